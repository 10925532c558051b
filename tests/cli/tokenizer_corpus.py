"""A varied, deterministic test corpus for the tokenizer: English prose, code, CJK, Arabic and
other scripts, emoji sequences, combining marks, whitespace runs, long numbers, special tokens
inside text, random code points and random bytes decoded lossily. Every line is valid UTF-8
without '\n' (a line may hold '\r' and other line breaks)."""
import random
import unicodedata

# Characters assigned after the Unicode version of PCRE2's tables (Debian 12: PCRE2 10.42,
# Unicode 14) have no category there, while the reference's Oniguruma knows them; the corpus
# keeps to characters this Python's Unicode data (14.0 on Debian 12) knows. docs/tokenizer.md.
def _known(ch):
    return unicodedata.category(ch) != "Cn" or ch in "\ufffe\uffff"


def _keep_known(text):
    return "".join(ch if _known(ch) else "\ufffd" for ch in text)

ENGLISH = """\
What light is this that breaks upon the hill? It is the morning, and the lark is up.
First Citizen: Before we proceed any further, hear me speak. We are accounted poor citizens.
I'll tell thee what, my lord: the king's men won't be here 'til noon, and they'd rather sleep.
She said, "You're late again!" -- and he replied, 'I've been walking since dawn, haven't I?'
The quick brown fox jumps over the lazy dog; THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG.
Mr. O'Neil paid $1,234.56 on 2024-03-15 at 09:45am for 3.5kg of apples (about 7.7 lb).
e.g. i.e. etc... well... hmm?! Really?!? No way!!! Yes--way. (Parenthetical [bracketed] {braced}.)
To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer the slings.
Email me at someone@example.com or visit https://example.org/path?q=1&r=two#frag for more.
ALL CAPS SHOUTING, lowercase whispering, CamelCaseWords, snake_case_words and kebab-case-words.
"""

CODE = r'''#include <vector>
int main(int argc, char** argv) { std::vector<int> v{1, 2, 3}; return v.size() > 2 ? 0 : 1; }
def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)  # naive
	if (x != nullptr && *x >= 0x7f) { y = x[i++] << 3 | 0b1010; }
const obj = { "key": [1, 2.5e-3, null, true], 'other': `template ${value}` };
SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name HAVING COUNT(*) > 1;
<div class="main" id='x'><a href="/a?b=c&amp;d=e">link</a>&nbsp;&lt;tag&gt;</div>
fn main() { let s: &str = "hi"; println!("{s:?} {}", 42_u64); } // rust
$ grep -rn "TODO" src/ | awk -F: '{print $1}' | sort | uniq -c > /tmp/out.txt 2>&1
    while (i<n){a[i]+=b[i]*c;++i;}   /* tight */   return;;;
'''

CJK = """\
今天天气很好，我们去公园散步吧。人工智能正在改变世界。
深度求索（DeepSeek）发布了新的大语言模型，参数量达到六千七百亿。
日本語のテキストです。ひらがな、カタカナ、そして漢字が混ざっています。
東京タワーは１９５８年に完成しました。ｶﾀｶﾅ半角もあります。
한국어 문장도 포함합니다. 안녕하세요, 만나서 반갑습니다!
中文English混合text，还有数字123和标点！？「引号」『书名号』
"""

SCRIPTS = """\
مرحبا بالعالم، هذه جملة عربية مع أرقام ١٢٣٤٥ وعلامات ترقيم؟
שלום עולם, זה משפט בעברית עם ניקוד: בְּרֵאשִׁית בָּרָא
नमस्ते दुनिया, यह हिंदी का वाक्य है। संख्या १२३
สวัสดีชาวโลก นี่คือประโยคภาษาไทย
Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю.
Γειά σου Κόσμε! Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.
Ἐν ἀρχῇ ἦν ὁ λόγος · ελληνικά με τόνους
Tiếng Việt có dấu: Tôi yêu tiếng Việt, đẹp lắm.
Zażółć gęślą jaźń. Příliš žluťoučký kůň úpěl ďábelské ódy. Straße Ärger Öl Übel ß
ܫܠܡܐ ܥܠܡܐ · ሰላም ዓለም · გამარჯობა · Բարեւ · ᚠᛇᚻ᛫ᛒᛦᚦ
"""

EMOJI = [
    "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇩🇪🇯🇵", "❤️", "✌🏿", "🧑🏻‍💻", "🤖", "🎉🎊", "1️⃣", "#️⃣",
    "☕", "⚡️", "🫠", "🐉", "👩🏾‍🚀", "🏴‍☠️", "©️", "™",
]

COMBINING = [
    "e\u0301", "a\u0308\u0304", "n\u0303", "Z\u0351\u0352\u0353\u0354\u0355a\u0356\u0357l\u0358\u0359g\u035ao",
    "\u0301leading mark", "o\u0338", "\u1100\u1161\u11a8", "क\u094d\u0937", "\u05d1\u05bc\u05b0",
    "A\u20dd", "x\u0336y\u0336z\u0336",
]

WHITESPACE = [
    " ", "  ", "    ", "\t", "\t\t", " \t ", "\r", "\r\r", " \r ", "\u00a0", "\u3000", "\u2028",
    "\u2029", "\u0085", "\u2003\u2009", "\u200b", "\ufeff", "\u000b", "\u000c", "\u180e", "\u202f",
]

NUMBERS = [
    "0", "7", "42", "123", "1234", "12345", "3141592653589793238462643383279",
    "1,000,000", "1.000.000,00", "-273.15", "6.022e23", "0x1F4A9", "+1 (555) 010-9999", "2024/12/01",
    "١٢٣٤٥٦٧", "１２３４５", "²³¹", "Ⅻ", "½¾", "๑๒๓", "९८७६", "000000000000", "v1.2.3-rc.4",
]


def _random_code_point(rng):
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x52F), (0x590, 0x6FF),
              (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x2100, 0x23FF),
              (0x3000, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xFF00, 0xFFEF),
              (0x1F300, 0x1FAFF), (0x1, 0x1F), (0x80, 0x9F), (0x10000, 0x10FFFF)]
    lo, hi = rng.choice(ranges)
    cp = rng.randint(lo, hi)
    if cp == 0x0A or 0xD800 <= cp <= 0xDFFF or not _known(chr(cp)):
        return ""
    return chr(cp)


def _random_bytes_line(rng):
    raw = bytes(rng.randrange(256) for _ in range(rng.randint(1, 60)))
    return _keep_known(raw.decode("utf-8", errors="replace").replace("\n", " "))


def corpus_lines(added_tokens, seed=15, count=3000):
    """Returns the corpus as a list of lines. added_tokens: contents of the tokenizer's added
    tokens, dropped into the text (whole, doubled, truncated, touching words)."""
    rng = random.Random(seed)
    fixed = []
    for block in (ENGLISH, CODE, CJK, SCRIPTS):
        fixed += block.split("\n")
    fragments = [w for line in fixed for w in line.split(" ") if w]

    def special():
        t = rng.choice(added_tokens)
        r = rng.random()
        if r < 0.15:
            return t[: rng.randint(1, len(t) - 1)]  # a prefix: must not match
        if r < 0.25:
            return t + t
        return t

    def pick():
        kind = rng.randrange(9)
        if kind == 0:
            return rng.choice(fragments)
        if kind == 1:
            return rng.choice(EMOJI) * rng.randint(1, 3)
        if kind == 2:
            return rng.choice(COMBINING)
        if kind == 3:
            return rng.choice(WHITESPACE) * rng.randint(1, 6)
        if kind == 4:
            return rng.choice(NUMBERS)
        if kind == 5:
            return special()
        if kind == 6:
            return "".join(_random_code_point(rng) for _ in range(rng.randint(1, 8)))
        if kind == 7:
            return str(rng.randint(0, 10 ** rng.randint(1, 40)))
        return rng.choice("!?.,;:'\"()[]{}<>-_=+*/\\|@#$%^&~`")* rng.randint(1, 4)

    lines = list(fixed)
    lines += ["", " ", "  leading spaces", "trailing spaces   ", "\ttab", "a\rb", "\r", "x" * 500,
              " " * 300 + "y", "9" * 200, "ab" * 300, "".join(added_tokens[:5]),
              "<｜User｜>Hello<｜Assistant｜>Hi there<｜end▁of▁sentence｜>"]
    while len(lines) < count:
        r = rng.random()
        if r < 0.1:
            lines.append(_random_bytes_line(rng))
        elif r < 0.2:
            lines.append(rng.choice(fixed) + special() + rng.choice(fixed))
        else:
            sep = rng.choice(["", " ", " ", " ", "\t", "  "])
            lines.append(sep.join(pick() for _ in range(rng.randint(1, 14))))
    return [line.replace("\n", " ") for line in lines]
