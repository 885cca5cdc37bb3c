// kefu demo product page: passes the page's own ?key= (a public key) to the
// widget, so the demo works against a server that requires keys. Loaded
// before /widget.js (both deferred), so the key is set before the widget
// first asks for the FAQ.
(() => {
  'use strict';
  const key = new URLSearchParams(location.search).get('key');
  if (!key) return;
  for (const widget of document.querySelectorAll('kefu-faq')) widget.setAttribute('key', key);
})();
