// The reference's speed on the same file, for docs/performance.md: Hugging Face's Rust tokenizers
// through Node (npm @anush008/tokenizers; tests/cli/test_tokenizer_reference.py installs it).
// Usage: NODE_PATH=~/.cache/mla-npm/node_modules node bench/tokenizer_hf_speed.js DIR TEXT
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('@anush008/tokenizers');

(async () => {
  const [dir, file] = process.argv.slice(2);
  const tok = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
  const text = fs.readFileSync(file, 'utf8');
  const mb = Buffer.byteLength(text, 'utf8') / 1e6;
  for (let pass = 0; pass < 3; ++pass) {
    const start = process.hrtime.bigint();
    const ids = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    const s = Number(process.hrtime.bigint() - start) / 1e9;
    console.log(`pass ${pass}: ${(mb / s).toFixed(2)} MB/s (${s.toFixed(3)} s, ${ids.length} tokens)`);
  }
})();
