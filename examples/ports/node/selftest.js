#!/usr/bin/env node
// A tiny driver for port.js: runs a few scripted requests through the port as a subprocess
// and checks the answers' shape and a few values. `node selftest.js [-v]` (exit 0 when all pass).
'use strict';

const { spawnSync } = require('child_process');
const path = require('path');
const assert = require('assert');

const verbose = process.argv.includes('-v');

// Sends every request in one write (as the driver's round trips do) and returns the answers.
function talk(requests, args = []) {
  const input = requests.map((r) => JSON.stringify(r)).join('\n') + '\n';
  const run = spawnSync('node', [path.join(__dirname, 'port.js'), ...args], { input, encoding: 'utf8' });
  assert.strictEqual(run.status, 0, `port exited ${run.status}: ${run.stderr}`);
  const answers = run.stdout.trim().split('\n').map((line) => JSON.parse(line));
  assert.strictEqual(answers.length, requests.length, 'one answer per request');
  if (verbose) requests.forEach((r, i) => console.log(`-> ${JSON.stringify(r)}\n<- ${JSON.stringify(answers[i])}`));
  return answers;
}

const reg = (t, name, extra = {}) => ({
  op: 'register', t, name, capacity: null, backpressure: 'reject', send_timeout: null, services: [], pools: [], ...extra,
});
const tell = (t, from, to, extra = {}) => ({
  op: 'send', t, from, to, priority: 'normal', key: null, ttl: null, timestamp: null, retry: null, send_timeout: null, ...extra,
});
const ask = (t, from, to, timeout, extra = {}) => ({
  op: 'request', t, from, to, timeout, priority: 'normal', key: null, retry: null, send_timeout: null, ...extra,
});
const evs = (answer) => answer.effects.filter((e) => e.ev).map((e) => e.ev);

const tests = {
  'hello and a bounded mailbox that rejects'() {
    const a = talk([
      { op: 'hello', protocol: 1, spec_version: '1.2' },
      { op: 'reset', seed: '1', transit: false },
      reg(0, 'db', { capacity: 1 }),
      reg(0, null),
      tell(1.5, 2, 'name:db'),
      tell(1.5, 2, 'name:db'),
      tell(1.5, 2, 'name:nobody'),
      { op: 'stats' },
    ]);
    assert.strictEqual(a[0].name, 'node-port');
    assert.ok(a[0].features.includes('strategy:round_robin'));
    assert.deepStrictEqual(a[2].effects[0].addresses, ['id:1', 'name:db']);
    assert.deepStrictEqual(a[4], {
      ok: true, result: 1, error: null, effects: [
        { ev: 'send', msg: 1, from: 'id:2', to: 'name:db', kind: 'tell' },
        { ev: 'route', msg: 1, actor: 'db' },
        { ev: 'enqueue', msg: 1, actor: 'db', depth: 1 },
        { wake: 1 }],
    });
    assert.strictEqual(a[5].error, 'mailbox_full');
    assert.deepStrictEqual(a[5].error_fields, { actor: 'db', capacity: 1 });
    assert.deepStrictEqual(evs(a[5]), ['send', 'route', 'reject']);
    assert.deepStrictEqual(a[6].error_fields, { address: 'name:nobody' });
    assert.strictEqual(a[7].stats.sent, 3);
    assert.strictEqual(a[7].stats.rejected, 2);
  },

  'misuse emits nothing and consumes no id'() {
    const a = talk([
      { op: 'reset', seed: '1', transit: false },
      reg(0, 'a'),
      ask(0, 1, 'name:a', 0),
      ask(0, 9, 'name:a', 1),
      tell(0, 1, 'bogus'),
      ask(0, 1, 'name:a', 1),
    ]);
    assert.strictEqual(a[2].error, 'invalid_config');
    assert.strictEqual(a[2].error_fields.field, 'timeout');
    assert.deepStrictEqual(a[3].error_fields, { address: 'id:9' });
    assert.strictEqual(a[4].error, 'invalid_address');
    assert.deepStrictEqual(a[2].effects, []);
    assert.strictEqual(a[5].result, 1);
    assert.deepStrictEqual(a[5].effects[0], { timer: 1, at: 1 });
    assert.strictEqual(a[5].effects[1].msg, 1);
  },

  'the deadline is exclusive (and the planted bug breaks it)'() {
    const script = [
      { op: 'reset', seed: '1', transit: false },
      reg(0, 'srv'),
      reg(0, 'cli'),
      ask(0.1, 2, 'name:srv', 0.2),
      { op: 'dequeue', t: 0.1, actor: 1 },
      { op: 'reply', t: 0.30000000000000004, from: 1, corr: 1 },
      { op: 'reply', t: 0.30000000000000004, from: 1, corr: 1 },
      { op: 'reply', t: 0.3, from: null, corr: 7 },
    ];
    const a = talk(script);
    assert.strictEqual(a[3].effects[1].deadline, 0.30000000000000004);
    assert.deepStrictEqual(a[5].effects.filter((e) => e.ev), [
      { ev: 'send', msg: 2, from: 'srv', to: 'id:2', kind: 'reply', corr: 1 },
      { ev: 'resolve', corr: 1, outcome: 'timed_out', requester: 'cli', msg: null },
      { ev: 'dead_letter', msg: 2, reason: 'late_reply' },
    ]);
    assert.deepStrictEqual(a[6].effects.at(-1), { ev: 'dead_letter', msg: 3, reason: 'late_reply' });
    assert.deepStrictEqual(a[7].effects, [
      { ev: 'send', msg: 4, from: null, to: null, kind: 'reply', corr: 7 },
      { ev: 'dead_letter', msg: 4, reason: 'unknown_correlation' }]);
    const b = talk([{ op: 'hello', protocol: 1, spec_version: '1.2' }, ...script], ['--bug', 'inclusive-deadline']);
    assert.strictEqual(b[0].name, 'node-port+inclusive-deadline');
    assert.strictEqual(b[6].effects.find((e) => e.ev === 'resolve').outcome, 'replied');
    assert.deepStrictEqual(b[7].effects.at(-1), { ev: 'dead_letter', msg: 3, reason: 'duplicate_reply' });
  },

  'round robin and its cursor (spec 3.2)'() {
    const a = talk([
      { op: 'reset', seed: '1', transit: false },
      { op: 'create_pool', t: 0, pool: 'p', strategy: 'round_robin' },
      reg(0, 'a', { pools: ['p'] }),
      reg(0, 'b', { pools: ['p'] }),
      reg(0, 'c', { pools: ['p'] }),
      tell(1, null, 'pool:p'),
      tell(1, null, 'pool:p'),
      { op: 'leave', t: 1, pool: 'p', actor: 1 },
      tell(1, null, 'pool:p'),
      { op: 'stop', t: 1, actor: 3, reason: 'crashed' },
      tell(1, null, 'pool:p'),
      { op: 'leave', t: 1, pool: 'p', actor: 1 },
    ]);
    const routed = (ans) => ans.effects.find((e) => e.ev === 'route').actor;
    assert.deepStrictEqual([a[5], a[6], a[8], a[10]].map(routed), ['a', 'b', 'c', 'b']);
    assert.deepStrictEqual(evs(a[9]), ['stop', 'dead_letter']);
    assert.deepStrictEqual(a[11].error_fields, { address: 'id:1', within: 'pool:p' });
  },

  'priority, ttl and expiry at dequeue'() {
    const a = talk([
      { op: 'reset', seed: '1', transit: false },
      reg(0, 'a'),
      tell(0, null, 'id:1', { ttl: 1 }),
      tell(0, null, 'id:1', { priority: 'high' }),
      tell(0, null, 'id:1'),
      { op: 'dequeue', t: 1, actor: 1 },
      { op: 'dequeue', t: 1, actor: 1 },
      { op: 'load', actor: 1 },
      { op: 'done', t: 1, actor: 1 },
      { op: 'load', actor: 1 },
    ]);
    assert.deepStrictEqual(a[5].effects, [{ ev: 'dequeue', msg: 2, actor: 'a' }]);
    assert.deepStrictEqual(a[6].effects, [
      { ev: 'dead_letter', msg: 1, reason: 'expired' }, { ev: 'dequeue', msg: 3, actor: 'a' }]);
    assert.strictEqual(a[7].load, 1);
    assert.strictEqual(a[9].load, 0);
  },

  'stop cancels requests and dead-letters mail of both priorities'() {
    const a = talk([
      { op: 'reset', seed: '1', transit: false },
      reg(0, null),
      reg(0, 'cli'),
      tell(0, 2, 'id:1'),
      tell(0, 2, 'id:1', { priority: 'high' }),
      ask(0, 2, 'id:1', 5),
      { op: 'unregister', t: 1, actor: 2, reason: 'unregistered' },
      { op: 'stop', t: 1, actor: 1, reason: 'crashed' },
      { op: 'pending' },
      { op: 'outcome', corr: 1 },
    ]);
    assert.deepStrictEqual(a[6].effects.filter((e) => e.ev), [
      { ev: 'unregister', actor: 'cli', reason: 'unregistered' },
      { ev: 'resolve', corr: 1, outcome: 'cancelled', requester: 'cli', msg: null }]);
    assert.deepStrictEqual(a[7].effects.map((e) => e.msg), [undefined, 2, 1, 3]);
    assert.deepStrictEqual(a[8].pending, []);
    assert.strictEqual(a[9].outcome, 'cancelled');
  },
  'services fail over, topics copy, drop modes dead-letter'() {
    const a = talk([
      { op: 'reset', seed: '1', transit: false },
      reg(0, 'a', { services: ['s'], capacity: 1, backpressure: 'drop_newest' }),
      reg(0, 'b', { capacity: 1, backpressure: 'drop_oldest' }),
      { op: 'provide', t: 0, service: 's', actor: 2 },
      { op: 'stop', t: 0, actor: 1, reason: 'crashed' },
      tell(0, null, 'service:s'),
      tell(0, null, 'service:s', { priority: 'high' }),
      { op: 'start', t: 0, actor: 1 },
      { op: 'subscribe', t: 0, topic: 't', actor: 1 },
      { op: 'subscribe', t: 0, topic: 't', actor: 2 },
      tell(0, null, 'topic:t'),
      tell(0, null, 'topic:t'),
      tell(0, null, 'topic:nobody'),
      { op: 'stats' },
    ]);
    assert.deepStrictEqual(evs(a[6]), ['send', 'route', 'dead_letter', 'enqueue']);
    assert.deepStrictEqual(a[10].effects.filter((e) => e.ev === 'send').map((e) => e.copy_of), [undefined, 3, 3]);
    assert.deepStrictEqual(evs(a[11]), ['send', 'route', 'send', 'route', 'dead_letter', 'send', 'route', 'dead_letter', 'enqueue']);
    assert.deepStrictEqual(evs(a[12]), ['send', 'dead_letter']);
    assert.deepStrictEqual(a[13].stats.topics, { t: 2 });
  },

  'random operations never break the protocol or conservation'() {
    let seed = 7;
    const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    const pick = (xs) => xs[rnd(xs.length)];
    for (let run = 0; run < 20; run += 1) {
      const reqs = [{ op: 'reset', seed: String(run), transit: false },
        { op: 'create_pool', t: 0, pool: 'p', strategy: pick(['round_robin', 'random', 'least_loaded', 'power_of_two']) }];
      let t = 0;
      for (let i = 0; i < 200; i += 1) {
        t += pick([0, 0, 0.5, 1]);
        const actor = 1 + rnd(5);
        const to = pick(['id:1', 'id:3', 'name:n2', 'pool:p', 'service:s', 'topic:t', 'pool:q', 'name:zz']);
        reqs.push(pick([
          reg(t, pick([null, `n${i % 4}`]), {
            capacity: pick([null, 1, 2]), backpressure: pick(['reject', 'drop_newest', 'drop_oldest']),
            services: pick([[], ['s']]), pools: pick([[], ['p']]),
          }),
          { op: pick(['stop', 'start', 'unregister', 'dequeue', 'dequeue', 'done']), t, actor },
          { op: pick(['join', 'leave']), t, pool: 'p', actor },
          { op: pick(['subscribe', 'unsubscribe']), t, topic: 't', actor },
          tell(t, pick([null, actor]), to, { priority: pick(['normal', 'high']), ttl: pick([null, 1]) }),
          ask(t, actor, to, pick([0.5, 1, 2])),
          { op: 'reply', t, from: pick([null, actor]), corr: 1 + rnd(8) },
          { op: 'cancel', t, corr: 1 + rnd(8) },
        ]));
      }
      for (let id = 1; id <= 80; id += 1) reqs.push({ op: 'depth', actor: id });
      reqs.push({ op: 'stats' });
      const answers = talk(reqs);
      answers.forEach((ans, i) => assert.ok(ans.ok, `${JSON.stringify(reqs[i])}: ${ans.problem}`));
      const s = answers.at(-1).stats;
      const queued = answers.slice(-81, -1).reduce((sum, ans) => sum + (ans.depth || 0), 0);
      assert.strictEqual(s.sent - s.rejected - s.delivered - s.dead_lettered, queued, JSON.stringify(s));
    }
  },
};

let failed = 0;
for (const [name, test] of Object.entries(tests)) {
  try {
    test();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}\n${e.message}`);
  }
}
process.exitCode = failed ? 1 : 0;
