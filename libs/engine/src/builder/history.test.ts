import assert from 'node:assert/strict';
import { test } from 'node:test';
import { goDuration, goHealthcheck, goQuotedList, goRune } from './history.js';

test("history texts in Go's fmt forms, as dockerd 20.10 writes them", () => {
  assert.equal(goQuotedList(['/bin/sh', '-xc', 'echo "hi"']), '["/bin/sh" "-xc" "echo \\"hi\\""]');
  assert.equal(goQuotedList([]), '[]');
  assert.equal(goDuration(undefined), '0s');
  assert.equal(goDuration(5e9), '5s');
  assert.equal(goDuration(90e9), '1m30s');
  assert.equal(goDuration(3600e9 + 1e9), '1h0m1s');
  assert.equal(goDuration(500e6), '500ms');
  assert.equal(goDuration(1.5e9), '1.5s');
  assert.equal(goRune(2), "'\\x02'");
  assert.equal(goRune(10), "'\\n'");
  assert.equal(goRune(65), "'A'");
  // Checked against `docker history` of dockerd 20.10: HEALTHCHECK --interval=5s --retries=2 CMD true
  assert.equal(goHealthcheck({ Test: ['CMD-SHELL', 'true'], Interval: 5e9, Retries: 2 }), '&{["CMD-SHELL" "true"] "5s" "0s" "0s" \'\\x02\'}');
  assert.equal(goHealthcheck({ Test: ['NONE'] }), '&{["NONE"] "0s" "0s" "0s" \'\\x00\'}');
});
