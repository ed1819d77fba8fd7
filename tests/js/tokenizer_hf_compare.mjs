// Compares `cachalot tokenize` with Hugging Face's tokenizer on a broad, deterministic corpus.
//
// Reference: @huggingface/tokenizers (Tokenizers.js, Hugging Face's official pure-JS port of the
// Rust `tokenizers` crate, the library transformers.js uses), built from a local tokenizer.json
// with no network. encode(text, { add_special_tokens: false }) is the reference, which is what
// `cachalot tokenize` promises.
//
// Tokenizers: the shared fixture (tiny-v4) and variants this script derives from it, so that
// agreement is not only fixture-shaped: extra added tokens (lstrip/rstrip, normalized=false,
// tokens that are prefixes of each other), merges in the ["a","b"] array form with some merges
// removed, and ignore_merges. Tokenizers.js ignores `single_word`, so no variant uses it (the
// C++ unit tests cover it against the Rust crate's rules).
//
// Exit status: 0 when every string agrees; 1 on any mismatch or error. When node_modules is
// missing the test fails, unless CACHALOT_ALLOW_SKIP=1, in which case it says so and exits 0.
//
// Environment: CACHALOT_BINARY (the cachalot executable), CACHALOT_SHARED (../shared),
// CACHALOT_HF_CORPUS_SIZE (strings per tokenizer, default 4000), CACHALOT_HF_KEEP=1 keeps the
// temporary directory.
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const sourceDir = process.env.CACHALOT_SOURCE_DIR ?? path.resolve(here, "../..");
const sharedDir = process.env.CACHALOT_SHARED ?? path.resolve(sourceDir, "../shared");
const binary = process.env.CACHALOT_BINARY ?? path.resolve(sourceDir, "build/cachalot");
const corpusSize = Number(process.env.CACHALOT_HF_CORPUS_SIZE ?? 4000);

let Tokenizer;
try {
    ({ Tokenizer } = await import("@huggingface/tokenizers"));
} catch (e) {
    const msg = `@huggingface/tokenizers is not installed (run \`npm ci\` in ${here}): ${e.message}`;
    if (process.env.CACHALOT_ALLOW_SKIP === "1") {
        console.log(`SKIP: ${msg}`);
        process.exit(0);
    }
    console.error(`FAIL: ${msg}`);
    process.exit(1);
}
if (!fs.existsSync(binary)) {
    console.error(`FAIL: cachalot binary not found at ${binary} (set CACHALOT_BINARY)`);
    process.exit(1);
}

// ---- deterministic corpus ---------------------------------------------------------------------

function mulberry32(seed) {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

const rand = mulberry32(20240917);
const int = (n) => Math.floor(rand() * n);
const pick = (xs) => xs[int(xs.length)];
const cp = (c) => String.fromCodePoint(c);
const range = (lo, hi) => () => cp(lo + int(hi - lo + 1));

// Code point ranges assigned long ago (Unicode <= 13), so that the Unicode versions of PCRE2,
// ICU and Oniguruma agree on their properties.
const scripts = {
    latin: range(0x41, 0x7a),
    latinAccented: () => pick([...("àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßœŒĀāĂăĄąĆćČčĎďĐđĒēĘęĚěĞğĪīİıŁłŃńŇňŐőŘřŚśŞşŠšŢţŤťŪūŮůŰűŸŹźŻżŽž")]),
    combining: () => pick(["e", "a", "o", "n", "u"]) + pick(["\u0301", "\u0300", "\u0308", "\u0303", "\u0327", "\u030a"]),
    cyrillic: range(0x410, 0x44f),
    greek: range(0x391, 0x3c9),
    arabic: range(0x621, 0x64a),
    arabicMarks: () => cp(0x628 + int(10)) + pick(["\u064b", "\u064e", "\u0650", "\u0651", "\u0652"]),
    hebrew: range(0x5d0, 0x5ea),
    devanagari: () => cp(0x915 + int(0x939 - 0x915)) + (rand() < 0.5 ? pick(["\u093e", "\u093f", "\u0940", "\u094d", "\u0902"]) : ""),
    thai: range(0xe01, 0xe3a),
    cjk: range(0x4e00, 0x9fa5),
    cjkExt: range(0x3400, 0x4db5),
    hiragana: range(0x3041, 0x3096),
    katakana: range(0x30a1, 0x30fa),
    hangul: range(0xac00, 0xd7a3),
    fullwidth: range(0xff01, 0xff5e),
};
const scriptNames = Object.keys(scripts);

const emojiBase = ["😀", "😂", "🥲", "👍", "👋", "🎉", "🚀", "❤️", "🔥", "🐳", "🌍", "🍣", "🤖", "✅", "⚡", "☕", "🏳️‍🌈", "🇯🇵", "🇫🇷", "1️⃣", "#️⃣", "©️", "™️"];
const zwj = ["👨‍👩‍👧‍👦", "👩‍💻", "🧑‍🚀", "👨‍❤️‍👨", "🏃‍♀️", "🧙‍♂️", "🐻‍❄️", "👁️‍🗨️"];
const skinTones = ["\u{1f3fb}", "\u{1f3fc}", "\u{1f3fd}", "\u{1f3fe}", "\u{1f3ff}"];
const emoji = () => {
    const r = rand();
    if (r < 0.4) return pick(emojiBase);
    if (r < 0.7) return pick(zwj);
    return pick(["👋", "👍", "🙏", "💪", "👩", "🧑‍💻", "🤝"]) + pick(skinTones);
};

const spaces = [" ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r\n\r\n", "\r", " \n", "\n ", " \t\n",
    "\u00a0", "\u3000", "\u2028", "\u2029", "\u0085", "\u200b", "\ufeff", "\u2009", "\u202f", "\u000b", "\u000c"];
const punct = ["!", "?", ".", ",", ";", ":", "...", "!!!", "?!", "--", "—", "–", "…", "“", "”", "«", "»", "„", "'", "\"", "(", ")",
    "[", "]", "{", "}", "<", ">", "/", "\\", "|", "@", "#", "$", "%", "^", "&", "*", "_", "+", "=", "~", "`", "§", "°", "€", "£",
    "¥", "¿", "¡", "。", "、", "！", "？", "：", "·", "•", "→", "≤", "∑", "√", "∞", "'s", "'ll", "n't"];
const words = ["the", "The", "of", "and", "license", "License", "software", "return", "if", "else", "for", "while", "function",
    "deepseek", "DeepSeek", "token", "Hello", "world", "HTTP", "JSON", "x", "y", "i", "a", "I", "OK", "naïve", "café", "résumé",
    "Straße", "Москва", "Ελλάδα", "東京", "ひらがな", "カタカナ", "한국어", "हिन्दी", "ไทย", "עברית", "العربية"];
const codeSnippets = [
    "int main(int argc, char** argv) {\n    return 0;\n}\n",
    "def f(x):\n\treturn x ** 2  # square\n",
    "for (size_t i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "const re = /^[a-z_][a-z0-9_]*$/i;\nconsole.log(re.test('abc'));",
    "{\"model\": \"deepseek-v4\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 128}",
    "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
    "SELECT id, name FROM users WHERE age >= 21 ORDER BY name;",
    "    if (x != nullptr && *x == '\\0') {\n        throw std::runtime_error(\"bad\");\n    }\n",
    "$ ls -la /tmp && echo \"$HOME\" | grep -E '^/home/[a-z]+$'",
    "x_1 = [1, 2, 3]; y__ = {'a': 1_000_000, 'b': 0xFF, 'c': 3.14e-10}",
    "#include <vector>\n#define MAX(a,b) ((a)>(b)?(a):(b))\n",
    "fn main() -> Result<(), Box<dyn Error>> { println!(\"{:?}\", v); Ok(()) }",
];

function digits() {
    const r = rand();
    const n = 1 + int(r < 0.7 ? 8 : 40);
    let s = "";
    for (let i = 0; i < n; i++) s += String(int(10));
    if (rand() < 0.2) s += "." + String(int(1000));
    if (rand() < 0.1) s = pick(["٠١٢٣٤٥٦٧٨٩", "０１２３", "²³¹", "½¼", "Ⅷ", "①②"]) + s;
    return s;
}

function scriptWord(name) {
    const f = scripts[name];
    let s = "";
    const n = 1 + int(8);
    for (let i = 0; i < n; i++) s += f();
    return s;
}

function fragment(specials) {
    const r = rand();
    if (r < 0.30) return scriptWord(pick(scriptNames));
    if (r < 0.42) return pick(words);
    if (r < 0.52) return pick(spaces);
    if (r < 0.60) return pick(punct);
    if (r < 0.68) return digits();
    if (r < 0.75) return emoji();
    if (r < 0.80) return pick(codeSnippets).slice(0, 1 + int(60));
    if (r < 0.88 && specials.length > 0) return pick(specials);
    if (r < 0.92) return cp(int(0x20)); // control characters
    return " ";
}

function randomText(specials, maxFragments) {
    const n = 1 + int(maxFragments);
    let s = "";
    for (let i = 0; i < n; i++) s += fragment(specials);
    return s;
}

function singleChar() {
    const r = rand();
    if (r < 0.5) return scripts[pick(scriptNames)]();
    if (r < 0.6) return pick(spaces);
    if (r < 0.7) return pick(punct).slice(0, 1);
    if (r < 0.8) return emoji();
    if (r < 0.9) return cp(int(0x80));
    return cp(0xa0 + int(0x2000)); // Latin-1 through general punctuation, all long assigned
}

function buildCorpus(specials, size) {
    const texts = ["", " ", "\n", "\r\n", "\t", "a", "0", "😀", "中", "\u0000", "      ", "\n\n\n\n", "1234567890123"];
    // Added-token strings alone, adjacent to text, doubled, partial, and with surrounding spaces.
    for (const t of specials) {
        texts.push(t, t + t, "x" + t + "y", " " + t + " ", "  " + t + "\n\n", t.slice(0, -1), t.slice(1), "a" + t.slice(0, -1) + t,
            t.toUpperCase(), "123" + t + "456", "你好" + t + "世界");
    }
    for (const name of scriptNames) {
        for (let i = 0; i < 10; i++) texts.push(scriptWord(name) + (rand() < 0.5 ? " " + scriptWord(name) : ""));
    }
    for (let i = 0; i < 40; i++) texts.push(digits());
    for (let i = 0; i < 40; i++) texts.push(pick(spaces).repeat(1 + int(12)) + pick(words) + pick(spaces).repeat(1 + int(5)));
    for (let i = 0; i < 30; i++) texts.push(pick(punct).repeat(1 + int(6)) + pick(words) + pick(punct).repeat(1 + int(4)));
    for (const c of codeSnippets) texts.push(c);
    for (let i = 0; i < 20; i++) texts.push(emoji() + emoji() + " " + emoji());
    let k = 0;
    while (texts.length < size) {
        const r = rand();
        if (r < 0.15) texts.push(singleChar());
        else if (r < 0.97) texts.push(randomText(specials, 12));
        else texts.push(randomText(specials, 600 + int(800))); // a few long ones
        k++;
    }
    return texts;
}

// ---- tokenizer variants -----------------------------------------------------------------------

function variantExtraAddedTokens(base) {
    const t = structuredClone(base);
    let next = Math.max(...Object.values(t.model.vocab), ...t.added_tokens.map((a) => a.id)) + 1;
    const add = (content, opts) => {
        t.added_tokens.push({ id: next++, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: false, ...opts });
    };
    add("<tool>", { special: true, normalized: false });
    add("<tool_call>", { special: true, normalized: false }); // longest match beats its prefix
    add("</tool>", { rstrip: true });
    add("[MASK]", { lstrip: true, special: true, normalized: false });
    add("<|im_start|>", { lstrip: true, rstrip: true, special: true });
    add("ĠHello", {}); // a string in byte-level spelling, matched literally
    add("the", { normalized: false }); // an added token that is also common text
    add("東京", {});
    return t;
}

function variantArrayMerges(base) {
    const t = structuredClone(base);
    // Array form of merges, every 5th merge removed (so merged tokens stay in the vocab, but
    // some are no longer reachable), and ignore_merges so whole pre-tokens in the vocab win.
    t.model.merges = base.model.merges.filter((_, i) => i % 5 !== 3).map((m) => (Array.isArray(m) ? m : m.split(" ")));
    t.model.ignore_merges = true;
    return t;
}

// ---- running ----------------------------------------------------------------------------------

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "cachalot-hf-tok-"));

// The command-line contract: compact output with a newline, and on bad input exit 1, a message on
// stderr, nothing on stdout.
function checkCliContract(modelDir) {
    const run = (args) => spawnSync(binary, ["tokenize", ...args], { encoding: "utf8" });
    const write = (name, text) => {
        const p = path.join(workDir, name);
        fs.writeFileSync(p, text);
        return p;
    };
    let failures = 0;
    const ok = run(["--model", modelDir, "--texts", write("two-empty.json", '["", ""]')]);
    if (ok.status !== 0 || ok.stdout !== "[[],[]]\n") {
        console.error(`FAIL [cli]: two empty strings gave status ${ok.status} and stdout ${JSON.stringify(ok.stdout)}`);
        failures++;
    }
    const bad = [
        ["a missing texts file", ["--model", modelDir, "--texts", path.join(workDir, "absent.json")]],
        ["texts that are not JSON", ["--model", modelDir, "--texts", write("broken.json", '["a", ')]],
        ["texts that are not an array", ["--model", modelDir, "--texts", write("object.json", '{"a": 1}')]],
        ["a non-string element", ["--model", modelDir, "--texts", write("number.json", '["a", 3]')]],
        ["a model directory without tokenizer.json", ["--model", workDir, "--texts", write("fine.json", '["a"]')]],
    ];
    for (const [what, args] of bad) {
        const r = run(args);
        if (r.status !== 1 || r.stdout !== "" || r.stderr.trim() === "") {
            console.error(`FAIL [cli]: ${what}: status ${r.status}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}`);
            failures++;
        }
    }
    console.log(`[cli] ${1 + bad.length - failures}/${1 + bad.length} command-line contract checks pass`);
    return failures;
}

function compare(name, tokenizerJson, tokenizerConfig, texts) {
    const dir = path.join(workDir, name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(tokenizerJson));
    fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(tokenizerConfig));
    const textsPath = path.join(dir, "texts.json");
    fs.writeFileSync(textsPath, JSON.stringify(texts));

    const hf = new Tokenizer(tokenizerJson, tokenizerConfig);
    const expected = texts.map((s) => hf.encode(s, { add_special_tokens: false }).ids);

    let stdout;
    try {
        stdout = execFileSync(binary, ["tokenize", "--model", dir, "--texts", textsPath], {
            maxBuffer: 1 << 30,
            encoding: "utf8",
            stdio: ["ignore", "pipe", "inherit"],
        });
    } catch (e) {
        console.error(`FAIL [${name}]: cachalot tokenize failed: ${e.message}`);
        return { agree: 0, total: texts.length };
    }
    let got;
    try {
        got = JSON.parse(stdout);
    } catch (e) {
        console.error(`FAIL [${name}]: output is not JSON: ${e.message}`);
        return { agree: 0, total: texts.length };
    }
    if (!Array.isArray(got) || got.length !== texts.length) {
        console.error(`FAIL [${name}]: expected ${texts.length} id arrays, got ${Array.isArray(got) ? got.length : typeof got}`);
        return { agree: 0, total: texts.length };
    }
    let agree = 0;
    let shown = 0;
    for (let i = 0; i < texts.length; i++) {
        const a = expected[i];
        const b = got[i];
        const same = Array.isArray(b) && a.length === b.length && a.every((x, j) => x === b[j]);
        if (same) {
            agree++;
        } else if (shown++ < 10) {
            // Show the ids around the first difference, and the text those ids cover.
            let d = 0;
            while (Array.isArray(b) && d < a.length && d < b.length && a[d] === b[d]) d++;
            const lo = Math.max(0, d - 4);
            const prefix = lo > 0 ? hf.decode(a.slice(0, lo)) : "";
            const at = texts[i].startsWith(prefix) ? prefix.length : 0;
            console.error(`MISMATCH [${name}] #${i} (${texts[i].length} chars), first difference at id ${d}, near text ${JSON.stringify(texts[i].slice(at, at + 40))}`);
            console.error(`  text     ${JSON.stringify(texts[i].length > 200 ? texts[i].slice(0, 200) + "…" : texts[i])}`);
            console.error(`  expected …${JSON.stringify(a.slice(lo, lo + 24))}`);
            console.error(`  got      …${JSON.stringify(Array.isArray(b) ? b.slice(lo, lo + 24) : b)}`);
        }
    }
    const nTokens = expected.reduce((n, ids) => n + ids.length, 0);
    console.log(`[${name}] ${agree}/${texts.length} strings agree (${nTokens} reference tokens)`);
    return { agree, total: texts.length };
}

const fixtureDir = path.join(sharedDir, "fixtures", "tiny-v4");
const baseJson = JSON.parse(fs.readFileSync(path.join(fixtureDir, "tokenizer.json"), "utf8"));
const baseConfig = JSON.parse(fs.readFileSync(path.join(fixtureDir, "tokenizer_config.json"), "utf8"));

const cliFailures = checkCliContract(fixtureDir);
const contents = (t) => t.added_tokens.map((a) => a.content);
const runs = [];
const fixtureCorpus = buildCorpus(contents(baseJson), corpusSize);
runs.push(compare("fixture", baseJson, baseConfig, fixtureCorpus));
const extra = variantExtraAddedTokens(baseJson);
// Tokenizers.js strips lstrip/rstrip whitespace with JavaScript's trim(), which counts U+FEFF as
// whitespace and not U+0085; the Rust crate uses White_Space, the other way round (cachalot
// follows the crate, and its unit tests check that). This corpus, whose tokens strip, avoids the
// two characters so that it tests the shared semantics.
const extraCorpus = buildCorpus(contents(extra), corpusSize).map((s) => s.replace(/[\u0085\ufeff]/g, "\u00a0"));
runs.push(compare("extra-added-tokens", extra, baseConfig, extraCorpus));
runs.push(compare("array-merges-ignore-merges", variantArrayMerges(baseJson), baseConfig, fixtureCorpus));

if (process.env.CACHALOT_HF_KEEP === "1") {
    console.log(`kept ${workDir}`);
} else {
    fs.rmSync(workDir, { recursive: true, force: true });
}
const total = runs.reduce((n, r) => n + r.total, 0);
const agree = runs.reduce((n, r) => n + r.agree, 0);
console.log(`total: ${agree}/${total} strings agree with Hugging Face tokenizers.js`);
process.exit(agree === total && cliFailures === 0 ? 0 : 1);
