import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyChanges, shellWords } from './changes.js';
import { chainIdOf, chainIds, sha256Digest } from './chain.js';
import { asFullImageId, familiarString, fullString, idPrefixOf, parseNormalizedReference, parseTaggedReference, shortId } from './reference.js';

describe('references', () => {
  it('normalises like Docker', () => {
    const cases: [string, string, string][] = [
      ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
      ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
      ['library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
      ['docker.io/library/busybox:1', 'docker.io/library/busybox:1', 'busybox:1'],
      ['index.docker.io/user/app', 'docker.io/user/app:latest', 'user/app:latest'],
      ['user/app:v1', 'docker.io/user/app:v1', 'user/app:v1'],
      ['localhost/app', 'localhost/app:latest', 'localhost/app:latest'],
      ['localhost:5000/a/b:t', 'localhost:5000/a/b:t', 'localhost:5000/a/b:t'],
      ['quay.io/org/img', 'quay.io/org/img:latest', 'quay.io/org/img:latest'],
      ['Registry.Example.com/app', 'Registry.Example.com/app:latest', 'Registry.Example.com/app:latest'],
    ];
    for (const [input, full, familiar] of cases) {
      const r = parseTaggedReference(input);
      assert.equal(fullString(r), full, input);
      assert.equal(familiarString(r), familiar, input);
    }
  });

  it('parses digests and keeps no default tag with one', () => {
    const d = `sha256:${'a'.repeat(64)}`;
    const r = parseTaggedReference(`busybox@${d}`);
    assert.equal(r.tag, undefined);
    assert.equal(r.digest, d);
    assert.equal(familiarString(r), `busybox@${d}`);
    assert.equal(familiarString(parseTaggedReference(`busybox:1@${d}`)), `busybox:1@${d}`);
  });

  it('refuses invalid references with 400 naming the reference', () => {
    for (const bad of ['', 'BusyBox', 'busybox:', 'a b', 'busybox:tag!', '-x', 'x//y', 'a'.repeat(64), `busybox:${'t'.repeat(129)}`]) {
      assert.throws(
        () => parseNormalizedReference(bad),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'BERTH_REFERENCE_INVALID', bad);
          assert.ok(err.message.includes(JSON.stringify(bad)), err.message);
          return true;
        },
      );
    }
    assert.throws(() => parseNormalizedReference('BusyBox'), /must be lowercase/);
  });

  it('recognises ids and id prefixes', () => {
    const h = 'ab'.repeat(32);
    assert.equal(asFullImageId(h), `sha256:${h}`);
    assert.equal(asFullImageId(`sha256:${h}`), `sha256:${h}`);
    assert.equal(asFullImageId('abab'), null);
    assert.equal(idPrefixOf('sha256:abab'), 'abab');
    assert.equal(idPrefixOf('abab'), 'abab');
    assert.equal(idPrefixOf('busybox'), null);
    assert.equal(shortId(`sha256:${h}`), h.slice(0, 12));
  });
});

describe('chain ids', () => {
  it('follows Docker: first = diff id, then sha256("parent diff")', () => {
    const a = sha256Digest('a');
    const b = sha256Digest('b');
    assert.equal(chainIdOf(null, a), a);
    const expected = sha256Digest(`${a} ${b}`);
    assert.equal(chainIdOf(a, b), expected);
    assert.deepEqual(chainIds([a, b]), [a, expected]);
    // pinned value, computed independently with sha256sum
    assert.equal(sha256Digest(''), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});

describe('changes', () => {
  it('CMD and ENTRYPOINT in JSON and shell form', () => {
    assert.deepEqual(applyChanges({}, ['CMD ["sh"]']).Cmd, ['sh']);
    assert.deepEqual(applyChanges({}, ['CMD echo "hi there"']).Cmd, ['/bin/sh', '-c', 'echo "hi there"']);
    const c = applyChanges({}, ['ENTRYPOINT ["/bin/app", "-x"]', 'CMD ["--help"]']);
    assert.deepEqual(c.Entrypoint, ['/bin/app', '-x']);
    assert.deepEqual(c.Cmd, ['--help']);
    // an ENTRYPOINT after CMD in the same set keeps CMD; alone it resets an inherited one
    assert.deepEqual(applyChanges({}, ['cmd ["a"]', 'entrypoint b']).Cmd, ['a']);
    assert.equal(applyChanges({ Cmd: ['old'] }, ['ENTRYPOINT ["e"]']).Cmd, null);
  });

  it('ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL', () => {
    const c = applyChanges({ Env: ['PATH=/bin'] }, [
      'ENV A=1 B="two words"',
      'ENV PATH /usr/bin:/bin',
      'ENV LEGACY value with spaces',
      'LABEL org.x=1 "quoted key"=v',
      'WORKDIR /srv',
      'WORKDIR app/../data',
      'USER 1000:1000',
      'EXPOSE 80 53/udp 8000-8001',
      'VOLUME ["/data", "/logs"]',
      'STOPSIGNAL SIGINT',
    ]);
    assert.deepEqual(c.Env, ['PATH=/usr/bin:/bin', 'A=1', 'B=two words', 'LEGACY=value with spaces']);
    assert.deepEqual(c.Labels, { 'org.x': '1', 'quoted key': 'v' });
    assert.equal(c.WorkingDir, '/srv/data');
    assert.equal(c.User, '1000:1000');
    assert.deepEqual(Object.keys(c.ExposedPorts ?? {}), ['80/tcp', '53/udp', '8000/tcp', '8001/tcp']);
    assert.deepEqual(Object.keys(c.Volumes ?? {}), ['/data', '/logs']);
    assert.equal(c.StopSignal, 'SIGINT');
  });

  it('refuses unknown instructions and bad arguments with 400', () => {
    for (const bad of ['RUN echo', 'FROM x', 'EXPOSE abc', 'ENV', 'LABEL novalue', 'EXPOSE 70000', 'ENV A="open']) {
      assert.throws(() => applyChanges({}, [bad]), { code: 'BERTH_INVALID_ARGUMENT' }, bad);
    }
  });

  it('splits words like a shell', () => {
    assert.deepEqual(shellWords(`a "b c" 'd e' f\\ g ""`), ['a', 'b c', 'd e', 'f g', '']);
  });
});
