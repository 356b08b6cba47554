import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDockerfile, parseInstruction } from './parse.js';
import { expandWord } from './shell-word.js';

const msg = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  return '(no error)';
};

test('stages, meta ARGs, comments and blank lines', () => {
  const df = parseDockerfile('# a comment\nARG BASE=busybox\n\nFROM ${BASE} AS Build\n# inside\nRUN echo hi\nFROM scratch\nCOPY --from=build /x /y\n');
  assert.equal(df.metaArgs.length, 1);
  assert.deepEqual(df.metaArgs[0]!.args, ['BASE', 'busybox']);
  assert.equal(df.stages.length, 2);
  assert.equal(df.stages[0]!.name, 'build');
  assert.equal(df.stages[0]!.base, '${BASE}');
  assert.equal(df.stages[0]!.instructions[0]!.line, 6);
  assert.equal(df.stages[1]!.instructions[0]!.flags.get('from'), 'build');
  assert.deepEqual(df.stages[1]!.instructions[0]!.args, ['/x', '/y']);
});

test('line continuations join, comments inside are dropped, the original keeps its text', () => {
  const df = parseDockerfile('FROM busybox\nRUN echo a \\\n# c\n  && echo b\nENV X=1\n');
  const run = df.stages[0]!.instructions[0]!;
  assert.equal(run.args[0], 'echo a   && echo b');
  assert.equal(run.line, 2);
  assert.equal(df.stages[0]!.instructions[1]!.line, 5);
});

test('# escape=` directive changes the continuation character; # syntax is kept and ignored', () => {
  const df = parseDockerfile('# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\nRUN echo a `\n b\n');
  assert.equal(df.escape, '`');
  assert.equal(df.syntax, 'docker/dockerfile:1');
  assert.equal(df.stages[0]!.instructions[0]!.args[0], 'echo a  b');
  // A directive after an instruction is a comment.
  const late = parseDockerfile('FROM busybox\n# escape=`\nRUN echo a \\\n b\n');
  assert.equal(late.escape, '\\');
});

test('exec and shell forms', () => {
  const run = parseInstruction('RUN ["echo", "a b"]', 1, '\\');
  assert.equal(run.json, true);
  assert.deepEqual(run.args, ['echo', 'a b']);
  const sh = parseInstruction('CMD echo "$HOME"', 1, '\\');
  assert.equal(sh.json, false);
  assert.deepEqual(sh.args, ['echo "$HOME"']);
  // Not valid JSON: shell form, as Docker.
  assert.deepEqual(parseInstruction('RUN [echo]', 1, '\\').args, ['[echo]']);
  assert.equal(msg(() => parseInstruction('SHELL sh -c', 2, '\\')), 'dockerfile parse error line 2: SHELL requires the arguments to be in JSON form');
});

test('ENV and LABEL pairs keep quotes for substitution; the legacy form takes the rest of the line', () => {
  assert.deepEqual(parseInstruction('ENV A=1 B="two words" C=x\\ y', 1, '\\').args, ['A', '1', 'B', '"two words"', 'C', 'x\\ y']);
  assert.deepEqual(parseInstruction('ENV A hello world', 1, '\\').args, ['A', 'hello world']);
  assert.deepEqual(parseInstruction('LABEL "com.x"="a b"', 1, '\\').args, ['"com.x"', '"a b"']);
  assert.equal(msg(() => parseInstruction('ENV', 2, '\\')), 'dockerfile parse error line 2: ENV requires at least one argument');
  // dockerd's line-parser errors name the file, not the line.
  assert.equal(msg(() => parseDockerfile('FROM busybox\nENV A=1 B\n', 'Dockerfile5')), 'failed to parse Dockerfile5: Syntax error - can\'t find = in "B". Must be of the form: name=value');
  assert.equal(msg(() => parseDockerfile('FROM busybox\nENV =1\n')), 'dockerfile parse error line 2: ENV names can not be blank');
  assert.equal(msg(() => parseDockerfile('FROM busybox\nLABEL a\n')), 'failed to parse Dockerfile: LABEL must have two arguments');
  assert.equal(msg(() => parseDockerfile('FROM busybox\nENV A\n')), 'failed to parse Dockerfile: ENV must have two arguments');
});

test("Docker's errors: unknown instruction with its line, COPY arity, FROM arity, no stage", () => {
  assert.equal(msg(() => parseDockerfile('FROM busybox\n\n# c\nFOO bar\n')), 'dockerfile parse error line 4: unknown instruction: FOO');
  assert.equal(
    msg(() => parseDockerfile('FROM busybox\nCOPY a\n')),
    'dockerfile parse error line 2: COPY requires at least two arguments, but only one was provided. Destination could not be determined',
  );
  assert.equal(msg(() => parseDockerfile('FROM busybox AS a b\n')), 'dockerfile parse error line 1: FROM requires either one or three arguments');
  assert.equal(msg(() => parseDockerfile('RUN echo hi\nFROM busybox\n')), 'no build stage in current context');
  assert.match(msg(() => parseDockerfile('FROM busybox\nRUN <<EOF\necho\nEOF\n')), /line 2: heredocs are not supported/);
  assert.match(msg(() => parseDockerfile('FROM busybox\nCOPY --bogus=1 a b\n')), /line 2: unknown flag: bogus/);
});

test('HEALTHCHECK and ONBUILD carry their instruction', () => {
  const hc = parseInstruction('HEALTHCHECK --interval=5s --retries=3 CMD ["true"]', 1, '\\');
  assert.equal(hc.flags.get('interval'), '5s');
  assert.deepEqual(hc.args, ['CMD', 'true']);
  assert.equal(hc.json, true);
  assert.deepEqual(parseInstruction('HEALTHCHECK NONE', 1, '\\').args, ['NONE']);
  assert.equal(msg(() => parseDockerfile('FROM busybox\nHEALTHCHECK --interval=abc CMD true\n')), 'dockerfile parse error line 2: time: invalid duration "abc"');
  const ob = parseInstruction('ONBUILD RUN echo x', 1, '\\');
  assert.equal(ob.sub!.cmd, 'run');
  assert.deepEqual(ob.args, ['RUN echo x']);
});

test('substitution: $VAR, ${VAR}, defaults, alternates, quotes and escapes', () => {
  const env = new Map([
    ['A', 'x'],
    ['E', ''],
  ]);
  assert.equal(expandWord('$A/${A}/$NOPE/${NOPE}', env), 'x/x//');
  assert.equal(expandWord('${NOPE:-def} ${E:-def} ${E-def} ${A:-def}', env), 'def def  x');
  assert.equal(expandWord('${A:+alt} ${NOPE:+alt} ${E+alt}', env), 'alt  alt');
  assert.equal(expandWord(`'$A' "$A" \\$A`, env), '$A x $A');
  assert.equal(expandWord('"a b"', env), 'a b');
  assert.equal(expandWord('$ and $1x', env), '$ and ');
  assert.equal(expandWord('`$A', env, '`'), '$A');
  assert.match(msg(() => expandWord('${NOPE:?is needed}', env)), /NOPE: is needed/);
});
