// A node:test reporter that writes one line, `N passed, N failed, N skipped`, when the run ends.
//
//   node --test --test-reporter=spec --test-reporter-destination=stdout \
//        --test-reporter=./tools/test/summary-reporter.mjs --test-reporter-destination=FILE ...
//
// It counts leaf tests, not suites or tests that only group subtests; todo counts as skipped.
// What Node 20.20 reports, and how this reads it:
//   - test:pass / test:fail come once per test, children before their parent, each with
//     data.nesting, data.file, data.skip, data.todo, and data.details.type === 'suite' for a
//     describe() block (undefined for a test()).
//   - Each test file runs in its own process; the file itself appears as a test at nesting 0
//     named by its path. It gets a pass/fail event only when it reports nothing else useful:
//     a file that crashed while loading, timed out, or exited non-zero after its tests
//     (test:fail, counted as one failure) or a file that defined no tests (test:pass, not
//     counted).
//   - A suite or parent test that fails for a reason of its own (a failing before/after hook,
//     code that throws after its subtests) while none of its children failed counts as one
//     failure, so the line never says "0 failed" for a run that failed.

/** Counts a stream of node:test events. Exported for the unit test. */
export function createCounter() {
  const counts = { passed: 0, failed: 0, skipped: 0 };
  // per file, per nesting level: how many children and failed descendants were reported
  // since the last result at the level above
  const frames = new Map();
  const frame = (file, nesting) => {
    let levels = frames.get(file);
    if (!levels) frames.set(file, (levels = []));
    return (levels[nesting] ??= { children: 0, failed: 0 });
  };

  function onResult(type, data) {
    const file = data.file ?? '';
    const nesting = data.nesting ?? 0;
    const below = frame(file, nesting + 1);
    const hadChildren = below.children > 0;
    const failedBelow = below.failed;
    below.children = 0;
    below.failed = 0;

    let failedHere = 0;
    const isSuite = data.details?.type === 'suite';
    const isFile = nesting === 0 && data.file !== undefined && data.name === data.file;
    if (isSuite || hadChildren) {
      if (type === 'test:fail' && failedBelow === 0 && !(data.todo || data.skip)) failedHere = 1;
    } else if (isFile && type === 'test:pass') {
      // a file that defined no tests
    } else if (data.todo || data.skip) {
      counts.skipped++;
    } else if (type === 'test:pass') {
      counts.passed++;
    } else {
      failedHere = 1;
    }
    counts.failed += failedHere;

    const here = frame(file, nesting);
    here.children++;
    here.failed += failedBelow + failedHere;
  }

  return {
    counts,
    onEvent(event) {
      if (event.type === 'test:pass' || event.type === 'test:fail') onResult(event.type, event.data);
    },
    line() {
      return `${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`;
    },
  };
}

export default async function* summaryReporter(source) {
  const counter = createCounter();
  for await (const event of source) counter.onEvent(event);
  yield `${counter.line()}\n`;
}
