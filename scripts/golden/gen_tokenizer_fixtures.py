#!/usr/bin/env python3
"""Golden tokenizer fixtures from llama.cpp (PyPI llama-cpp-python), for tests/core/tokenizer_test.cpp.

For each bundled GGUF model this tokenizes a deterministic set of strings with every combination of
add_bos/parse_special that matters, and records:
  * the token ids (llama_tokenize),
  * llama_detokenize(ids, remove_special=False, unparse_special=True)  -> "decode"
  * llama_detokenize(ids, remove_special=True,  unparse_special=False) -> "decode_plain"
  * per-token pieces (llama_token_to_piece, special=True) for a sample of ids and a digest over all ids,
  * bos/eos/eot and the end-of-generation set (llama_vocab_is_eog over the whole vocabulary),
  * chat-template renderings (the GGUF's Jinja template via jinja2 where the file has one, and
    llama.cpp's built-in template otherwise),
  * the token count and an FNV-1a digest of the ids of the whole WikiText-2 test file,
  * "variants": the same vocabulary with other metadata (another pre-tokenizer for the byte-level BPE
    model, a space prefix for the SentencePiece one), tokenized by llama.cpp from a metadata-only GGUF
    copy written with the `gguf` package, so that code paths the shipped files do not use are checked.

Usage (from the repository root):  python3 scripts/golden/gen_tokenizer_fixtures.py
Rerunnable; output is deterministic for a given llama-cpp-python version.
"""
import base64
import ctypes
import gzip
import json
import os
import sys
import tempfile

import gguf
import llama_cpp

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = "/work/shared/data"
MODELS = [
    ("smollm2-135m", "models/SmolLM2-135M-Instruct.Q4_1.gguf"),
    ("gemma3-270m", "models/gemma-3-270m-q4_k_m.gguf"),
]
MAX_FIXTURE_BYTES = 1_500_000
# Metadata variants of each model, to check code paths the shipped files do not use against llama.cpp:
# the same vocabulary with another pre-tokenizer (byte-level BPE) or with a space prefix (SentencePiece).
VARIANTS = {
    "smollm2-135m": [{"tokenizer.ggml.pre": p} for p in ("gpt-2", "default", "llama3", "qwen2", "starcoder")],
    "gemma3-270m": [{"tokenizer.ggml.add_space_prefix": True}],
}


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


# ----------------------------------------------------------------------------------------------
# test strings (deterministic)


def data_strings():
    out = []
    wiki = os.path.join(DATA, "wikitext2_wiki.test.raw")
    if os.path.exists(wiki):
        with open(wiki, "rb") as f:
            lines = f.read().split(b"\n")
        # the first non-trivial lines, kept with their surrounding spaces as in the file
        taken = 0
        for ln in lines:
            if taken >= 24:
                break
            if len(ln.strip()) == 0:
                continue
            out.append(ln[:1200])
            taken += 1
        # one multi-line chunk with the file's blank lines and " = Heading = " lines
        out.append(b"\n".join(lines[:40])[:3000])
    spec = os.path.join(DATA, "spec_bench_question.jsonl")
    if os.path.exists(spec):
        with open(spec, "r", encoding="utf-8") as f:
            rows = [json.loads(l) for l in f if l.strip()]
        step = max(1, len(rows) // 20)
        for r in rows[::step][:20]:
            turns = r.get("turns") or []
            if turns:
                out.append(turns[0][:1500].encode("utf-8"))
    shakespeare = os.path.join(DATA, "tinyshakespeare_input.txt")
    if os.path.exists(shakespeare):
        with open(shakespeare, "rb") as f:
            out.append(f.read(2000))
    gsm = os.path.join(DATA, "gsm8k_test.jsonl")
    if os.path.exists(gsm):
        with open(gsm, "r", encoding="utf-8") as f:
            for i, l in enumerate(f):
                if i >= 6:
                    break
                out.append(json.loads(l)["question"].encode("utf-8"))
    humaneval = os.path.join(DATA, "HumanEval.jsonl.gz")
    if os.path.exists(humaneval):
        with gzip.open(humaneval, "rt", encoding="utf-8") as f:
            for i, l in enumerate(f):
                if i >= 4:
                    break
                out.append(json.loads(l)["prompt"].encode("utf-8"))
    return out


def build_strings():
    s = []
    # English sentences
    s += [
        "Hello world",
        "Hello, world!",
        "The quick brown fox jumps over the lazy dog.",
        "It was the best of times, it was the worst of times.",
        "I'm sure you'll agree that we've done what they'd asked.",
        "Speculative decoding drafts k tokens and verifies them in one pass.",
        "  leading spaces",
        "trailing spaces   ",
        "a",
        "A",
        " ",
        "  ",
        "   ",
        "\n",
        "\n\n",
        "\t",
        "HELLO WORLD",
        "hello world",
        "Hello World",
        "e.g. i.e. etc. Mr. Smith vs. Dr. Jones",
        "Don't stop believin'",
        "rock 'n' roll",
        "'quoted' \"double quoted\" `backticked`",
        "semi;colon:colon,comma.period!bang?question",
        "The year 2024 had 366 days; 1,234,567.89 is a number.",
    ]
    # contractions, both cases, with and without spaces
    for c in ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]:
        s.append(f"he{c} here")
        s.append(f"HE{c.upper()} HERE")
        s.append(f"x {c} y")
    s += ["'S'T'RE'VE'M'LL'D", "'s't're've'm'll'd", "''''", "it's's", "I'M", "You'Re", "we'Ve"]
    # unicode scripts
    s += [
        "日本語のテキストです。東京は日本の首都です。",
        "中文文本测试，你好世界！",
        "한국어 텍스트입니다. 안녕하세요",
        "مرحبا بالعالم، هذا نص عربي.",
        "नमस्ते दुनिया, यह हिंदी पाठ है।",
        "Привет, мир! Это русский текст.",
        "Γειά σου Κόσμε! Ελληνικά κείμενα.",
        "สวัสดีชาวโลก ภาษาไทย",
        "שלום עולם, טקסט בעברית",
        "Xin chào thế giới, tiếng Việt có dấu",
        "Ça va? Déjà vu, naïve café, crème brûlée, Ærøskøbing, Straße, ﬁ ligature",
        "Zażółć gęślą jaźń; Příliš žluťoučký kůň",
        "e\u0301 a\u0300 o\u0308 n\u0303 combining marks: Z\u0351\u0353\u0324a\u0337\u0329l\u0316g\u0326o",
        "ᚠᛇᚻ᛫ᛒᛦᚦ runes and ⴰⵣⵓⵍ tifinagh",
        "ქართული ენა, Հայերեն, ትግርኛ",
        "தமிழ் தெலుగు ಕನ್ನಡ മലയാളം বাংলা ગુજરાતી ਪੰਜਾਬੀ",
        "Ελληνικά ΑΒΓ αβγ ϐϑϕ",
        "fullwidth ＡＢＣ１２３！",
        "math: ∀x∈ℝ, ∃y: x² + y² ≤ 1 ⇒ ∑ᵢ aᵢ ≠ ∞; ½ ¾ ⅓ Ⅻ ①②③",
        "currency: $5 €10 £20 ¥30 ₹40 ₿0.001",
        "superscripts ⁰¹²³ and subscripts ₀₁₂₃, Roman Ⅷ, circled ⑩",
        "Arabic-Indic digits ٠١٢٣٤٥٦٧٨٩ and Devanagari digits ०१२३",
        "mixed 日本English中文123한국",
        "zero\u200bwidth\u200cjoiner\u200dnon\u2060joiner",
        "nbsp\u00a0here, thin\u2009space, ideographic\u3000space, line\u2028sep, para\u2029sep, nel\u0085x",
        "BOM\ufeffstart and replacement \ufffd char",
        "private use \ue000\uf8ff and astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟘𝟙𝟚",
    ]
    # emoji
    s += [
        "I love 🍕 and 🍺!",
        "👍👍🏻👍🏿",
        "family: 👨‍👩‍👧‍👦 and 👩‍❤️‍💋‍👨",
        "flags: 🇺🇸🇬🇧🇯🇵🇩🇪 🏳️‍🌈 🏴‍☠️",
        "keycaps 1️⃣ #️⃣ *️⃣",
        "😀😃😄😁😆😅😂🤣🥲☺️😊😇",
        "emoji🙂without🙃spaces",
        "🤖 + 🧠 = 🚀",
    ]
    # whitespace runs
    s += [
        "a  b   c    d     e",
        "a\tb\t\tc\t\t\td",
        "line1\nline2\n\nline4\n\n\nline7",
        "crlf\r\nline\r\n\r\nend",
        "mixed \t \n \r\n  \t\t  \n\n   x",
        "\n\n\nleading newlines",
        "trailing newlines\n\n\n",
        "    indented four",
        "        indented eight\n            indented twelve",
        " \n \n \n",
        "\t\n\t\n",
        "\r\r\r",
        "\x0b\x0c vertical tab and form feed",
        " " * 40,
        "x" + " " * 17 + "y",
        "\n" * 33,
        "end with space ",
        " start with space",
        "two  spaces  between  words",
    ]
    # digits and long numbers
    s += [
        "0",
        "7",
        "42",
        "123",
        "1234",
        "12345",
        "123456789012345678901234567890",
        "3.14159265358979323846264338327950288",
        "-273.15",
        "1e-10 6.022e23 0x1F 0b1011 0o777",
        "phone: +1 (555) 123-4567",
        "date 2025-11-23T19:31:00Z",
        "v1.2.3-rc.4+build.5",
        "IPv4 192.168.0.1 and IPv6 2001:db8::ff00:42:8329",
        "a1b2c3d4e5",
        "100%",
        "$1,000,000.00",
        "1st 2nd 3rd 4th 21st 101st",
    ]
    # code snippets
    s += [
        "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
        "#include <stdio.h>\nint main(void) {\n\tprintf(\"Hello, %s!\\n\", \"world\");\n\treturn 0;\n}\n",
        "fn main() {\n    let v: Vec<i32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}",
        "const add = (a, b) => a + b; // arrow\nconsole.log(`sum: ${add(1, 2)}`);",
        "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC;",
        "<html><head><title>Test</title></head><body><div class=\"x\">Hi</div></body></html>",
        "{\"key\": [1, 2, {\"nested\": null}], \"ok\": true}",
        "x = y**2 + z//3 - w%4; a += 1; b -= 2; c *= 3; d /= 4",
        "if (a && b || !c) { return a != b ? a : b; }",
        "    for i in range(10):\n        print(i)\n\n",
        "#!/bin/bash\nset -euo pipefail\nfor f in *.txt; do echo \"$f\"; done",
        "public static void main(String[] args) { System.out.println(\"hi\"); }",
        "\\begin{equation} E = mc^2 \\end{equation}",
        "std::vector<std::pair<int, float>> v{{1, 2.0f}};",
        "arr[i][j] = arr[i-1][j-1] + 1;",
        "```python\nprint('hi')\n```",
        "a->b->c; x::y::z; p?.q ?? r",
        "/* block comment */ // line comment -- sql comment # hash comment",
    ]
    # URLs, emails, paths
    s += [
        "https://www.example.com/path/to/page?query=1&other=two#fragment",
        "http://localhost:8080/api/v1/users/42",
        "mailto:someone@example.org",
        "ftp://ftp.example.net/pub/file.tar.gz",
        "C:\\Users\\Name\\Documents\\file.txt",
        "/usr/local/lib/python3.11/site-packages/",
        "git@github.com:ggml-org/llama.cpp.git",
        "www.example.co.uk/index.html",
    ]
    # punctuation runs
    s += [
        "!!!???...",
        "...",
        "—–-",
        "«guillemets» „quotes“ “curly” ‘single’",
        "#### Heading",
        "***bold*** ___under___",
        "(((nested)))",
        "[[[]]]{{{}}}",
        "@#$%^&*()_+-=[]{}|;':\",./<>?`~",
        "?!?!?!",
        " ?",
        " !",
        " .",
        " ,",
        "a ' b",
        "it ' s",
        "x , y . z ! w ?",
        "~~~ ^^^ ||| \\\\\\",
        "。、！？「」『』【】",
        "¿Qué? ¡Sí!",
    ]
    # special-token text inside normal text
    s += [
        "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>system\nYou are helpful.<|im_end|>",
        "text <|im_end|> more text",
        "<|endoftext|>",
        "before<|endoftext|>after",
        "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
        "<start_of_turn>",
        "<end_of_turn>",
        "<bos>",
        "<eos>",
        "<bos>Hello<eos>",
        "<pad><unk><mask>",
        "<|im_start|><|im_start|>",
        "<|im_start",
        "im_start|>",
        "< |im_start| >",
        "<<|im_start|>>",
        "<|im_end|><|endoftext|><start_of_turn><end_of_turn><bos><eos>",
        "<repo_name>specula<file_sep>core/tokenizer.cpp",
        "<reponame><filename><gh_stars>",
        "</s> <s> <unk>",
        "<unused0><unused1>",
        "[multimodal]",
        "<0x41><0x0A>",
        "<div><span>tag soup</span></div>",
        "<start_of_image>",
        "<|im_start|>user\nWhat's 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n",
    ]
    # assorted tricky text
    s += [
        "",
        "a" * 100,
        "ab" * 60,
        "The" * 30,
        "supercalifragilisticexpialidocious antidisestablishmentarianism",
        "pneumonoultramicroscopicsilicovolcanoconiosis",
        "CamelCaseIdentifierName snake_case_name kebab-case-name SCREAMING_CASE",
        "HTTPServerError XMLHttpRequest iPhone eBay",
        "α-β-γ, x_1, y^2",
        "tab\tseparated\tvalues\n1\t2\t3",
        "comma,separated,values\n\"a\",\"b\",\"c\"",
        "key: value\nlist:\n  - item1\n  - item2",
        "Ünïcödé Çàpïtàls ÀÉÎÕÜ",
        "ǅungla ǈ ǋ titlecase",
        "İstanbul ıi Iı",
        "ß ẞ ﬀ ﬃ",
        "Å Å Å (composed, decomposed, angstrom)",
        "\u00e9 vs e\u0301",
        "Ω Ω (ohm and omega)",
        "K K (kelvin and K)",
        "\u0000null\u0000byte",
        "\x01\x02\x03\x1f\x7f control chars",
        "\u0080\u0081\u009f C1 controls",
        "a\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307 stacked",
        "\u1100\u1161\u11a8 jamo",
        "文字化け テスト ｶﾀｶﾅ",
    ]
    # more multilingual sentences and mixed-script lines
    s += [
        "Der schnelle braune Fuchs springt über den faulen Hund.",
        "El veloz murciélago hindú comía feliz cardillo y kiwi.",
        "Le cœur déçu mais l'âme plutôt naïve, Louÿs rêva de crapaüter.",
        "Português: não, coração, ações, pão.",
        "Türkçe: Pijamalı hasta yağız şoföre çabucak güvendi.",
        "Svenska: Flygande bäckasiner söka hwila på mjuka tuvor.",
        "Íslenska: Kæmi ný öxi hér, ykist þjófum nú bæði víl og ádrepa.",
        "Українська: Чуєш їх, доцю, га? Кумедна ж ти, прощайся без ґольфів!",
        "Български: Ах, чудна българска земьо, полюшвай цъфтящи жита.",
        "Српски: Љубазни фењерџија чађавог лица хоће да ми покаже штос.",
        "Հայերեն: Բարեւ աշխարհ",
        "فارسی: سلام دنیا، حال شما چطور است؟",
        "اردو: ہیلو دنیا",
        "日本語: いろはにほへと ちりぬるを わかよたれそ つねならむ",
        "中文：我能吞下玻璃而不伤身体。",
        "粵語：我可以食玻璃，佢唔會傷害我。",
        "한국어: 다람쥐 헌 쳇바퀴에 타고파",
        "ภาษาไทย: เป็นมนุษย์สุดประเสริฐเลิศคุณค่า",
        "ລາວ: ຂອບໃຈ",
        "ខ្មែរ: សួស្តី",
        "မြန်မာ: မင်္ဂလာပါ",
        "Tiếng Việt: Tôi có thể ăn thủy tinh mà không hại gì.",
        "Yorùbá: Mo lè je̩ dígí, kò ní pa mí lára.",
        "Hawaiʻi: Hiki iaʻu ke ʻai i ke aniani",
        "Esperanto: Eĥoŝanĝo ĉiuĵaŭde",
        "Math in text: the sum Σ_{i=1}^{n} i = n(n+1)/2 holds for n ≥ 1.",
        "Temperature: 23°C (73°F), humidity 45%, wind 12 km/h NNE.",
        "Quotes: “Don’t panic,” she said — and then: ‘really’.",
        "Ellipsis… and em—dash and en–dash.",
        "Version strings: Python 3.11.7, GCC 12.2.0, CUDA 12.4",
        "Hashes: sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "UUID 123e4567-e89b-12d3-a456-426614174000",
        "Base64: SGVsbG8sIFdvcmxkIQ==",
        "Markdown | table | here |\n|---|---|---|\n| 1 | 2 | 3 |",
        "- [ ] todo\n- [x] done\n  * nested bullet",
        "> quoted line\n>> double quoted",
        "Email me at first.last+tag@sub.example.com, thanks!",
        "@user #hashtag $TICKER &amp; &lt;tag&gt;",
        "He said: 'I'll be there at 5 o'clock,' didn't he?",
        "WE'LL SEE. THEY'RE HERE. I'D GO. YOU'VE WON. SHE'S OK.",
        "numbers-with-words: 3D 4K 5G 2FA B2B COVID-19 MP3 H2O",
        "Spaces before punctuation : ; , . ! ?",
        "Tabs\tbefore\tpunctuation\t.\t,",
        "Newline before punctuation\n.\n,\n!",
        "Mixed CRLF\r\n\tindent\r\n    spaces\r\n",
    ]
    out = [x.encode("utf-8") for x in s]
    # a few longer generated strings
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    out.append(" ".join(words[i % 8] + str(i) for i in range(200)).encode())
    out.append(("The cat sat on the mat. " * 40).encode())
    out.append("".join(chr(0x4E00 + (i * 37) % 20000) for i in range(300)).encode("utf-8"))
    out.append("".join(chr(0x0400 + (i * 7) % 256) for i in range(300)).encode("utf-8"))
    out.append(bytes(range(0x20, 0x7F)) * 3)
    # invalid UTF-8 byte sequences
    out += [
        b"\xff",
        b"\xfe\xff",
        b"abc\x80def",
        b"\xc3",
        b"\xc3(",
        b"caf\xc3",
        b"\xe2\x82",
        b"\xe2\x82(x",
        b"\xf0\x9f\x98",
        b"\xf0\x9f\x98 x",
        b"\xed\xa0\x80 surrogate",
        b"\xc0\x80 overlong",
        b"\xe0\x80\x80 overlong3",
        b"\x80\x81\x82\x83",
        b"valid \xe6\x97\xa5 then \xe6\x97 broken",
        b"\xa0\xa1 continuation bytes",
        b"mixed \xff\xfe text \xc3\xa9 ok \xc3 bad",
        b"<|im_end|>\xff<|im_start|>",
        b"\xf8\x88\x80\x80\x80 five-byte form",
        b"  \xff  \xfe  ",
    ]
    out += data_strings()
    # deterministic de-duplication, keeping first occurrences
    seen = set()
    uniq = []
    for x in out:
        if x not in seen:
            seen.add(x)
            uniq.append(x)
    return uniq


# ----------------------------------------------------------------------------------------------
# llama.cpp calls


class Fnv1a64:
    """64-bit FNV-1a, easy to recompute in the C++ test."""

    def __init__(self):
        self.value = 0xCBF29CE484222325

    def update(self, data: bytes):
        v = self.value
        for b in data:
            v = ((v ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        self.value = v


def wikitext_summary(vocab):
    """Token count and digest of the whole WikiText-2 test file (no BOS, no special parsing)."""
    path = os.path.join(DATA, "wikitext2_wiki.test.raw")
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        text = f.read()
    ids = tokenize(vocab, text, False, False)
    digest = Fnv1a64()
    for t in ids:
        digest.update(int(t).to_bytes(4, "little", signed=True))
    return {"file": "wikitext2_wiki.test.raw", "bytes": len(text), "n_tokens": len(ids),
            "ids_fnv1a64": f"{digest.value:016x}"}


def tokenize(vocab, text: bytes, add_bos: bool, special: bool):
    n_max = len(text) + 16
    buf = (llama_cpp.llama_token * n_max)()
    n = llama_cpp.llama_tokenize(vocab, text, len(text), buf, n_max, add_bos, special)
    if n < 0:
        n_max = -n
        buf = (llama_cpp.llama_token * n_max)()
        n = llama_cpp.llama_tokenize(vocab, text, len(text), buf, n_max, add_bos, special)
        assert n >= 0
    return list(buf[:n])


def detokenize(vocab, ids, remove_special: bool, unparse_special: bool) -> bytes:
    arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
    cap = 64 + 64 * len(ids)
    out = ctypes.create_string_buffer(cap)
    n = llama_cpp.llama_detokenize(vocab, arr, len(ids), out, cap, remove_special, unparse_special)
    if n < 0:
        cap = -n + 16
        out = ctypes.create_string_buffer(cap)
        n = llama_cpp.llama_detokenize(vocab, arr, len(ids), out, cap, remove_special, unparse_special)
        assert n >= 0
    return out.raw[:n]


def piece(vocab, tid: int, special: bool) -> bytes:
    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_token_to_piece(vocab, tid, buf, 256, 0, special)
    if n < 0:
        buf = ctypes.create_string_buffer(-n)
        n = llama_cpp.llama_token_to_piece(vocab, tid, buf, -n, 0, special)
    return buf.raw[:n]


def write_variant(src: str, dst: str, overrides: dict):
    """Copies the metadata of `src` (no tensors) to `dst`, replacing the keys in `overrides`."""
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, r.fields["general.architecture"].contents())
    for key, field in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(key, overrides.get(key, field.contents()), vtype, sub_type=sub)
    for key, value in overrides.items():
        if key not in r.fields:
            w.add_key_value(key, value, gguf.GGUFValueType.BOOL if isinstance(value, bool) else gguf.GGUFValueType.STRING)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def variant_cases(path: str, overrides: dict, strings):
    with tempfile.TemporaryDirectory() as tmp:
        dst = os.path.join(tmp, "variant.gguf")
        write_variant(path, dst, overrides)
        llm = llama_cpp.Llama(model_path=dst, vocab_only=True, verbose=False)
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        cases = []
        for text in strings:
            for add_bos, special in ((False, True), (True, False)):
                ids = tokenize(vocab, text, add_bos, special)
                case = {"add_bos": add_bos, "special": special, "ids": ids}
                try:
                    case["text"] = text.decode("utf-8")
                except UnicodeDecodeError:
                    case["text_b64"] = b64(text)
                case["decode_b64"] = b64(detokenize(vocab, ids, False, True))
                plain = detokenize(vocab, ids, True, False)
                if plain != base64.b64decode(case["decode_b64"]):
                    case["decode_plain_b64"] = b64(plain)
                cases.append(case)
        del llm
    return {"overrides": overrides, "cases": cases}


def builtin_chat(tmpl_name: bytes, messages, add_ass: bool) -> str:
    arr = (llama_cpp.llama_chat_message * len(messages))()
    keep = []
    for i, m in enumerate(messages):
        r = m["role"].encode()
        c = m["content"].encode()
        keep += [r, c]
        arr[i].role = r
        arr[i].content = c
    cap = 8192
    buf = ctypes.create_string_buffer(cap)
    n = llama_cpp.llama_chat_apply_template(tmpl_name, arr, len(messages), add_ass, buf, cap)
    assert 0 <= n <= cap, n
    return buf.raw[:n].decode("utf-8")


CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Where is the treasure?"}],
    [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
    ],
    [
        {"role": "system", "content": "  Be brief.  "},
        {"role": "user", "content": "  Explain speculative decoding.\n"},
        {"role": "assistant", "content": "Draft, then verify.\n\n"},
        {"role": "user", "content": "Thanks"},
    ],
    [{"role": "user", "content": "Unicode: 日本語 🚀 and <b>tags</b>"}],
]


def chat_cases(model_name: str, template):
    cases = []
    for conv in CONVERSATIONS:
        for add_gen in (True, False):
            if template:
                import jinja2

                env = jinja2.Environment(loader=jinja2.BaseLoader())
                expected = env.from_string(template).render(messages=conv, add_generation_prompt=add_gen)
                source = "jinja2"
            else:
                expected = builtin_chat(b"gemma", conv, add_gen)
                source = "llama.cpp builtin 'gemma'"
            cases.append(
                {"messages": conv, "add_generation_prompt": add_gen, "expected": expected, "source": source}
            )
    return cases


# ----------------------------------------------------------------------------------------------


def main():
    strings = build_strings()
    print(f"{len(strings)} distinct strings", file=sys.stderr)
    for name, rel in MODELS:
        path = os.path.join(ROOT, rel)
        if not os.path.exists(path):
            print(f"skipping {name}: {path} not found", file=sys.stderr)
            continue
        llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)

        cases = []
        for text in strings:
            combos = [(False, False), (True, True)]
            if b"<" in text or b"[" in text or len(text) < 8:
                combos += [(True, False), (False, True)]
            for add_bos, special in combos:
                ids = tokenize(vocab, text, add_bos, special)
                case = {"add_bos": add_bos, "special": special}
                try:
                    case["text"] = text.decode("utf-8")
                except UnicodeDecodeError:
                    case["text_b64"] = b64(text)
                case["ids"] = ids
                case["decode_b64"] = b64(detokenize(vocab, ids, False, True))
                plain = detokenize(vocab, ids, True, False)
                if plain != base64.b64decode(case["decode_b64"]):
                    case["decode_plain_b64"] = b64(plain)
                cases.append(case)

        # pieces: a digest over all ids plus explicit pieces for a sample (all non-normal tokens and
        # every 97th id)
        digest = Fnv1a64()
        sample = {}
        for tid in range(n_vocab):
            p = piece(vocab, tid, True)
            digest.update(len(p).to_bytes(4, "little"))
            digest.update(p)
            attr = llama_cpp.llama_vocab_get_attr(vocab, tid)
            if tid % 97 == 0 or (attr & 4) == 0 or tid < 300:
                sample[str(tid)] = b64(p)
        plain_sample = {}
        for tid in list(range(0, min(n_vocab, 300))):
            plain_sample[str(tid)] = b64(piece(vocab, tid, False))

        eog = [i for i in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, i)]
        template = llm.metadata.get("tokenizer.chat_template")
        fixture = {
            "generator": "scripts/golden/gen_tokenizer_fixtures.py",
            "llama_cpp_python_version": llama_cpp.__version__,
            "model": name,
            "model_file": os.path.basename(rel),
            "model_size": os.path.getsize(path),
            "n_vocab": n_vocab,
            "bos": llama_cpp.llama_vocab_bos(vocab),
            "eos": llama_cpp.llama_vocab_eos(vocab),
            "eot": llama_cpp.llama_vocab_eot(vocab),
            "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
            "eog": eog,
            "pieces_fnv1a64": f"{digest.value:016x}",
            "wikitext": wikitext_summary(vocab),
            "pieces_b64": sample,
            "pieces_plain_b64": plain_sample,
            "chat": chat_cases(name, template),
            "cases": cases,
            "variants": [variant_cases(path, ov, [t for t in strings if len(t) <= 400])
                         for ov in VARIANTS.get(name, [])],
        }
        out_path = os.path.join(ROOT, "tests", "golden", f"tokenizer_{name}.json")
        text = json.dumps(fixture, ensure_ascii=False, separators=(",", ":"))
        size = len(text.encode("utf-8"))
        if size > MAX_FIXTURE_BYTES:
            raise SystemExit(f"{out_path}: {size} bytes exceeds the {MAX_FIXTURE_BYTES}-byte budget")
        with open(out_path, "w", encoding="utf-8") as f:
            f.write(text)
            f.write("\n")
        print(f"{name}: {len(cases)} cases over {len(strings)} strings, {size} bytes -> {out_path}",
              file=sys.stderr)
        del llm


if __name__ == "__main__":
    main()
