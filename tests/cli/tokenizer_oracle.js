// Reference ids and texts for tests/cli/test_tokenizer_reference.py, from two independent
// implementations installed with npm: @anush008/tokenizers (Hugging Face's Rust `tokenizers`
// through Node: the ground truth) and @lenml/tokenizers (a JavaScript port).
// Usage: node tokenizer_oracle.js encode TOKENIZER_DIR TEXT_FILE OUT_JSONL
//        node tokenizer_oracle.js decode TOKENIZER_DIR IDS_JSONL OUT_JSONL
//        node tokenizer_oracle.js encode-hf TEXT_FILE DIR OUT_JSONL [DIR OUT_JSONL ...]
// encode: each line of TEXT_FILE (split at '\n') -> {"hf": [...], "lenml": [...]}, plus one
// last record for the whole file as one text. decode: each line (a JSON array) -> {"hf": text}.
// encode-hf: the same without lenml, for several tokenizer folders in one run.
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('@anush008/tokenizers');

function readLines(file) {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  if (text.endsWith('\n')) lines.pop();
  return [text, lines];
}

async function encodeHf(file, pairs) {
  const [text, lines] = readLines(file);
  for (let i = 0; i < pairs.length; i += 2) {
    const hf = Tokenizer.fromFile(path.join(pairs[i], 'tokenizer.json'));
    const out = [];
    for (const line of [...lines, text]) {
      const encoding = await hf.encode(line, null, { addSpecialTokens: false });
      out.push(JSON.stringify({ hf: Array.from(encoding.getIds()) }));
    }
    fs.writeFileSync(pairs[i + 1], out.join('\n') + '\n');
  }
}

async function main() {
  if (process.argv[2] === 'encode-hf') return encodeHf(process.argv[3], process.argv.slice(4));
  const [mode, dir, input, output] = process.argv.slice(2);
  const hf = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
  const out = [];
  if (mode === 'encode') {
    const { TokenizerLoader } = require('@lenml/tokenizers');
    const lenml = TokenizerLoader.fromPreTrained({
      tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')),
      tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')),
    });
    const [text, lines] = readLines(input);
    for (const line of [...lines, text]) {
      const encoding = await hf.encode(line, null, { addSpecialTokens: false });
      const ids = lenml.encode(line, { add_special_tokens: false });
      out.push(JSON.stringify({ hf: Array.from(encoding.getIds()), lenml: ids }));
    }
  } else if (mode === 'decode') {
    const lines = fs.readFileSync(input, 'utf8').split('\n').filter((l) => l.length > 0);
    for (const line of lines) out.push(JSON.stringify({ hf: await hf.decode(JSON.parse(line), false) }));
  } else {
    throw new Error('mode must be encode or decode');
  }
  fs.writeFileSync(output, out.join('\n') + '\n');
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
