#!/usr/bin/env node
// A port of the brokerlab broker (docs/spec.md 1.2) to Node, speaking the port protocol
// (docs/port-protocol.md, version 1) as JSON Lines on stdin/stdout.
//
//   node port.js                          the port
//   node port.js --bug inclusive-deadline the port with a planted bug (spec 5.5)
//   node port.js --self-test              check SplitMix64 against spec 1.2's test vectors
//
// Written from docs/spec.md, docs/port-protocol.md and docs/trace-format.md alone.
'use strict';

const readline = require('readline');

const PROTOCOL = 1;
const SPEC_VERSION = '1.2';
const FEATURES = [
  'strategy:round_robin', 'strategy:random', 'strategy:least_loaded', 'strategy:power_of_two',
  'backpressure:reject', 'backpressure:drop_newest', 'backpressure:drop_oldest',
  'services', 'topics', 'priority', 'ttl',
];
const STRATEGIES = ['round_robin', 'random', 'least_loaded', 'power_of_two',
  'consistent_hash', 'broadcast', 'shared'];
const SUPPORTED_STRATEGIES = ['round_robin', 'random', 'least_loaded', 'power_of_two'];
const MODES = ['reject', 'drop_newest', 'drop_oldest', 'block'];
const SUPPORTED_MODES = ['reject', 'drop_newest', 'drop_oldest'];
const PRIORITIES = ['high', 'normal'];
const TRANSIENT = new Set(['mailbox_full', 'pool_empty', 'service_unavailable']);
const NAME_RE = /^[A-Za-z0-9_.\-/@+]+$/;
const ID_RE = /^[1-9][0-9]*$/;
const ADDRESS_KINDS = ['id', 'name', 'service', 'pool', 'topic'];

// ---------------------------------------------------------------------------------------------
// Randomness: SplitMix64 on BigInt, all arithmetic modulo 2^64 (spec 1.2).

const MASK64 = (1n << 64n) - 1n;

class SplitMix64 {
  constructor(seed) {
    this.state = BigInt.asUintN(64, BigInt(seed));
  }

  next() {
    this.state = (this.state + 0x9E3779B97F4A7C15n) & MASK64;
    let z = this.state;
    z = ((z ^ (z >> 30n)) * 0xBF58476D1CE4E5B9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94D049BB133111EBn) & MASK64;
    return z ^ (z >> 31n);
  }

  // Lemire's method: an unbiased integer in [0, n), as a BigInt.
  below(n) {
    const bn = BigInt(n);
    let m = this.next() * bn;
    if ((m & MASK64) < bn) {
      const t = ((1n << 64n) - bn) % bn;
      while ((m & MASK64) < t) m = this.next() * bn;
    }
    return m >> 64n;
  }

  unit() {
    return Number(this.next() >> 11n) * 2 ** -53;
  }
}

// ---------------------------------------------------------------------------------------------
// Errors (spec 8.4). A BrokerError carries its code and its fields; the message is not sent.

class BrokerError extends Error {
  constructor(code, fields) {
    super(`${code} ${JSON.stringify(fields)}`);
    this.code = code;
    this.fields = fields;
  }

  get transient() {
    return TRANSIENT.has(this.code);
  }
}

// A request the port cannot handle (an unknown op, a feature it lacks): answered ok:false.
class Unsupported extends Error {}

const err = {
  actorNotFound: (address, within) =>
    new BrokerError('actor_not_found', within ? { address, within } : { address }),
  mailboxClosed: (address) => new BrokerError('mailbox_closed', { address }),
  mailboxFull: (actor, capacity) => new BrokerError('mailbox_full', { actor, capacity }),
  duplicate: (address, within) =>
    new BrokerError('duplicate_registration', within ? { address, within } : { address }),
  poolNotFound: (pool) => new BrokerError('pool_not_found', { pool }),
  poolEmpty: (pool) => new BrokerError('pool_empty', { pool }),
  serviceUnavailable: (service) => new BrokerError('service_unavailable', { service }),
  invalidAddress: (value, expected) => new BrokerError('invalid_address', { value, expected }),
  invalidConfig: (field, value, expected) =>
    new BrokerError('invalid_config', { field, value, expected }),
};

const NAME_EXPECTED = 'one or more of the characters A-Z a-z 0-9 _ . - / @ +';

// The next binary64 after x > 0 (for the planted bug only).
function nextUp(x) {
  const bits = new BigInt64Array(new Float64Array([x]).buffer);
  bits[0] += 1n;
  return new Float64Array(bits.buffer)[0];
}

function checkName(value) {
  if (typeof value !== 'string' || !NAME_RE.test(value)) throw err.invalidAddress(value, NAME_EXPECTED);
}

// spec 2.2, 2.3: `kind:value`, the value a name, or a positive id without leading zeros.
function parseAddress(text) {
  const expected = `kind:value with kind one of ${ADDRESS_KINDS.join(', ')}; ` +
    `an id a positive integer without leading zeros, a name ${NAME_EXPECTED}`;
  if (typeof text !== 'string') throw err.invalidAddress(text, expected);
  const colon = text.indexOf(':');
  const kind = colon < 0 ? null : text.slice(0, colon);
  const value = colon < 0 ? null : text.slice(colon + 1);
  if (!ADDRESS_KINDS.includes(kind)) throw err.invalidAddress(text, expected);
  if (kind === 'id' ? !ID_RE.test(value) : !NAME_RE.test(value)) throw err.invalidAddress(text, expected);
  return { kind, value: kind === 'id' ? Number(value) : value, text };
}

// spec 8.3: a time that must be a finite number > 0 (or null when optional).
function checkPositive(field, value, optional) {
  if (optional && value === null) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw err.invalidConfig(field, value, optional ? 'a finite number > 0, or null' : 'a finite number > 0');
  }
}

const idAddress = (id) => `id:${id}`;

// ---------------------------------------------------------------------------------------------
// The broker. One instance per `reset`. Each operation collects its effects (events, timers,
// cancelled timers) in `effects`, and its wakes in `wakes`, appended after the last event.

class Broker {
  constructor(seed, options = {}) {
    this.random = new SplitMix64(seed);
    this.inclusiveDeadline = Boolean(options.inclusiveDeadline);
    this.now = 0;
    this.nextActorId = 1;
    this.nextMsgId = 1;
    this.nextCorr = 1;
    this.nextTimerId = 1;
    this.actors = new Map(); // id -> actor, in registration order
    this.names = new Map(); // name -> actor id
    this.pools = new Map(); // name -> { name, strategy, members: [ids], cursor }
    this.services = new Map(); // name -> [provider ids], in the order they provided it
    this.topics = new Map(); // name -> [subscriber ids], in subscription order
    this.requests = new Map(); // corr -> request, every request ever issued
    this.pending = new Map(); // corr -> request, the pending ones, increasing corr
    this.timers = new Map(); // timer id -> callback
    this.counters = { sent: 0, rejected: 0, delivered: 0, dead_lettered: 0, retries: 0 };
    this.deadLetters = new Map(); // reason -> count, in the order first seen
    this.outcomes = { replied: 0, timed_out: 0, cancelled: 0, failed: 0 };
    this.effects = [];
    this.wakes = [];
  }

  // -- plumbing --------------------------------------------------------------------------------

  // Runs one operation at time t; returns { result, error, effects } for the answer.
  run(t, fn) {
    this.now = t;
    this.effects = [];
    this.wakes = [];
    let result = null;
    let error = null;
    try {
      const outcome = fn();
      if (outcome instanceof BrokerError) error = outcome;
      else if (outcome !== undefined) result = outcome;
    } catch (e) {
      if (!(e instanceof BrokerError)) throw e;
      // Misuse: every check runs before any change, so nothing was emitted (spec 9.3).
      if (this.effects.length) throw new Error(`internal: ${e.code} raised after events`);
      error = e;
    }
    const effects = this.effects.concat(this.wakes.map((id) => ({ wake: id })));
    this.effects = [];
    this.wakes = [];
    return { result: error ? null : result, error, effects };
  }

  emit(ev, fields) {
    this.effects.push({ ev, ...fields });
  }

  setTimer(at, callback) {
    const id = this.nextTimerId++;
    this.timers.set(id, callback);
    this.effects.push({ timer: id, at });
    return id;
  }

  cancelTimer(id) {
    if (this.timers.delete(id)) this.effects.push({ cancel: id });
  }

  actor(id) {
    const actor = this.actors.get(id);
    if (!actor) throw err.actorNotFound(idAddress(id));
    return actor;
  }

  deadLetter(msg, reason) {
    this.counters.dead_lettered += 1;
    this.deadLetters.set(reason, (this.deadLetters.get(reason) || 0) + 1);
    this.emit('dead_letter', { msg: msg.id, reason });
  }

  // -- registry (spec 2) -----------------------------------------------------------------------

  register({ name = null, capacity = null, backpressure = 'reject', send_timeout: sendTimeout = null,
    services = [], pools = [] }) {
    checkPositive('send_timeout', sendTimeout, true);
    if (capacity !== null && !(Number.isInteger(capacity) && capacity >= 1)) {
      throw err.invalidConfig('capacity', capacity, 'an integer >= 1, or null (unbounded)');
    }
    if (!MODES.includes(backpressure)) {
      throw err.invalidConfig('backpressure', backpressure, `one of ${MODES.join(', ')}`);
    }
    // An unbounded mailbox never applies its mode, so any known one will do there.
    if (capacity !== null && !SUPPORTED_MODES.includes(backpressure)) {
      throw new Unsupported(`backpressure ${backpressure}`);
    }
    if (name !== null) {
      checkName(name);
      if (this.names.has(name)) throw err.duplicate(`name:${name}`);
    }
    services.forEach(checkName);
    for (const pool of pools) if (!this.pools.has(pool)) throw err.poolNotFound(pool);
    const twice = (list) => list.find((x, i) => list.indexOf(x) !== i);
    const service = twice(services);
    if (service !== undefined) throw err.duplicate(`service:${service}`, 'the registration');
    const pool = twice(pools);
    if (pool !== undefined) throw err.duplicate(`pool:${pool}`, 'the registration');

    const id = this.nextActorId++;
    const actor = {
      id, name, label: name === null ? idAddress(id) : name, capacity, backpressure, sendTimeout,
      live: true, working: false, high: [], normal: [],
    };
    this.actors.set(id, actor);
    if (name !== null) this.names.set(name, id);
    for (const s of services) this.addProvider(s, id);
    for (const p of pools) this.pools.get(p).members.push(id);
    const addresses = [idAddress(id)];
    if (name !== null) addresses.push(`name:${name}`);
    for (const s of services) addresses.push(`service:${s}`);
    for (const p of pools) addresses.push(`pool:${p}`);
    this.emit('register', {
      actor: actor.label, name, addresses, capacity, backpressure, send_timeout: sendTimeout,
    });
    return id;
  }

  addProvider(service, id) {
    if (!this.services.has(service)) this.services.set(service, []);
    this.services.get(service).push(id);
  }

  unregister({ actor: id, reason = 'unregistered' }) {
    const actor = this.actor(id);
    this.emit('unregister', { actor: actor.label, reason });
    if (actor.live) this.shutdown(actor);
    this.actors.delete(id);
    if (actor.name !== null) this.names.delete(actor.name);
    for (const [service, providers] of this.services) {
      const i = providers.indexOf(id);
      if (i >= 0) providers.splice(i, 1);
      if (!providers.length) this.services.delete(service);
    }
    for (const pool of this.pools.values()) {
      const j = pool.members.indexOf(id);
      if (j >= 0) this.removeMember(pool, j);
    }
    for (const [topic, subscribers] of this.topics) {
      const i = subscribers.indexOf(id);
      if (i >= 0) subscribers.splice(i, 1);
      if (!subscribers.length) this.topics.delete(topic);
    }
  }

  stop({ actor: id, reason = 'crashed' }) {
    const actor = this.actor(id);
    if (!actor.live) return;
    this.emit('stop', { actor: actor.label, reason });
    this.shutdown(actor);
  }

  // spec 9.3 shutdown: queued mail in dequeue order, then the actor's pending requests.
  shutdown(actor) {
    actor.live = false;
    actor.working = false;
    const queued = actor.high.concat(actor.normal);
    actor.high = [];
    actor.normal = [];
    for (const msg of queued) this.deadLetter(msg, 'actor_stopped');
    for (const request of [...this.pending.values()]) {
      if (request.requester === actor.id) this.endRequest(request, 'cancelled', null);
    }
  }

  start({ actor: id }) {
    const actor = this.actor(id);
    if (actor.live) return;
    actor.live = true;
    this.emit('start', { actor: actor.label });
  }

  // spec 2.9: the name's grammar, then the strategy, then the name not taken.
  createPool({ pool: name, strategy }) {
    checkName(name);
    if (!STRATEGIES.includes(strategy)) {
      throw err.invalidConfig('strategy', strategy, `one of ${STRATEGIES.join(', ')}`);
    }
    if (!SUPPORTED_STRATEGIES.includes(strategy)) throw new Unsupported(`strategy ${strategy}`);
    if (this.pools.has(name)) throw err.duplicate(`pool:${name}`);
    this.pools.set(name, { name, strategy, members: [], cursor: 0 });
    this.emit('create_pool', { pool: name, strategy });
  }

  // spec 2.9: the actor, then the pool, then membership (join and leave alike).
  join({ pool: name, actor: id }) {
    const actor = this.actor(id);
    const pool = this.pools.get(name);
    if (!pool) throw err.poolNotFound(name);
    if (pool.members.includes(id)) throw err.duplicate(idAddress(id), `pool:${name}`);
    pool.members.push(id); // spec 3.2.2
    this.emit('join', { pool: name, actor: actor.label });
  }

  leave({ pool: name, actor: id }) {
    const actor = this.actor(id);
    const pool = this.pools.get(name);
    if (!pool) throw err.poolNotFound(name);
    const j = pool.members.indexOf(id);
    if (j < 0) throw err.actorNotFound(idAddress(id), `pool:${name}`);
    this.removeMember(pool, j);
    this.emit('leave', { pool: name, actor: actor.label });
  }

  // spec 3.2.3: the members after j move down; the cursor follows so no one is skipped.
  removeMember(pool, j) {
    pool.members.splice(j, 1);
    if (j < pool.cursor) pool.cursor -= 1;
    pool.cursor = pool.members.length ? pool.cursor % pool.members.length : 0;
  }

  provide({ service, actor: id }) {
    const actor = this.actor(id);
    checkName(service);
    if ((this.services.get(service) || []).includes(id)) {
      throw err.duplicate(idAddress(id), `service:${service}`);
    }
    this.addProvider(service, id);
    this.emit('provide', { service, actor: actor.label });
  }

  subscribe({ topic, actor: id }) {
    const actor = this.actor(id);
    checkName(topic);
    const subscribers = this.topics.get(topic) || [];
    if (subscribers.includes(id)) throw err.duplicate(idAddress(id), `topic:${topic}`);
    subscribers.push(id);
    this.topics.set(topic, subscribers);
    this.emit('subscribe', { topic, actor: actor.label });
  }

  unsubscribe({ topic, actor: id }) {
    const actor = this.actor(id);
    checkName(topic);
    const subscribers = this.topics.get(topic) || [];
    const i = subscribers.indexOf(id);
    if (i < 0) throw err.actorNotFound(idAddress(id), `topic:${topic}`);
    subscribers.splice(i, 1);
    if (!subscribers.length) this.topics.delete(topic);
    this.emit('unsubscribe', { topic, actor: actor.label });
  }

  // -- routing (spec 2.5, 3) -------------------------------------------------------------------

  // Resolves an id:, name:, service: or pool: address to a live actor, or throws.
  resolve(address) {
    switch (address.kind) {
      case 'id':
      case 'name': {
        const id = address.kind === 'id' ? address.value : this.names.get(address.value);
        const actor = this.actors.get(id);
        if (!actor) throw err.actorNotFound(address.text);
        if (!actor.live) throw err.mailboxClosed(address.text);
        return actor;
      }
      case 'service': {
        const providers = this.services.get(address.value) || [];
        const id = providers.find((p) => this.actors.get(p).live);
        if (id === undefined) throw err.serviceUnavailable(address.value);
        return this.actors.get(id);
      }
      case 'pool': {
        const pool = this.pools.get(address.value);
        if (!pool) throw err.poolNotFound(address.value);
        const live = pool.members.filter((id) => this.actors.get(id).live);
        if (!live.length) throw err.poolEmpty(pool.name);
        return this.actors.get(this.choose(pool, live));
      }
      default:
        throw new Error(`internal: cannot resolve ${address.text}`);
    }
  }

  // The pool's strategy chooses one of its live members (at least one is live).
  choose(pool, live) {
    const n = live.length;
    switch (pool.strategy) {
      case 'round_robin': { // spec 3.2.1
        const size = pool.members.length;
        for (let k = 0; k < size; k += 1) {
          const index = (pool.cursor + k) % size;
          const id = pool.members[index];
          if (this.actors.get(id).live) {
            pool.cursor = (index + 1) % size;
            return id;
          }
        }
        throw new Error('internal: no live member');
      }
      case 'random': // spec 3.3
        return live[Number(this.random.below(n))];
      case 'least_loaded': // spec 3.4: ties to the earliest member
        return live.reduce((best, id) => (this.load(id) < this.load(best) ? id : best));
      case 'power_of_two': { // spec 3.5
        if (n === 1) return live[0];
        const i = Number(this.random.below(n));
        let j = Number(this.random.below(n - 1));
        if (j >= i) j += 1;
        const [a, b] = i < j ? [live[i], live[j]] : [live[j], live[i]];
        return this.load(b) < this.load(a) ? b : a;
      }
      default:
        throw new Error(`internal: strategy ${pool.strategy}`);
    }
  }

  size(actor) {
    return actor.high.length + actor.normal.length;
  }

  load(id) {
    const actor = this.actors.get(id);
    return this.size(actor) + (actor.working ? 1 : 0);
  }

  // -- messages (spec 4, 5, 6, 9.3) ------------------------------------------------------------

  newMessage(fields) {
    const msg = {
      id: this.nextMsgId++, kind: 'tell', from: null, to: null, address: null, corr: null,
      deadline: null, key: null, priority: 'normal', own: true, copyOf: null, ...fields,
    };
    this.counters.sent += 1;
    const ev = { msg: msg.id, from: msg.from, to: msg.to, kind: msg.kind };
    if (msg.corr !== null) ev.corr = msg.corr;
    if (msg.kind === 'request') ev.deadline = msg.deadline;
    if (msg.key !== null) ev.key = msg.key;
    if (msg.copyOf !== null) ev.copy_of = msg.copyOf;
    this.emit('send', ev);
    return msg;
  }

  // Common checks of a one-way send (spec 7.3), in its order, then of a request (spec 5.10).
  checkPriority(priority) {
    if (!PRIORITIES.includes(priority)) {
      throw err.invalidConfig('priority', priority, `one of ${PRIORITIES.join(', ')}`);
    }
  }

  checkRetry(retry) {
    if (retry !== null && retry !== undefined) throw new Unsupported('retry policies');
  }

  send({ from = null, to, priority = 'normal', key = null, ttl = null, timestamp = null,
    retry = null, send_timeout: sendTimeout = null }) {
    const sender = from === null ? null : this.actor(from);
    checkPositive('ttl', ttl, true);
    const address = parseAddress(to);
    this.checkPriority(priority);
    checkPositive('send_timeout', sendTimeout, true);
    this.checkRetry(retry);
    const deadline = ttl === null ? null : (timestamp === null ? this.now : timestamp) + ttl;
    const msg = this.newMessage({
      from: sender && sender.label, to: address.text, address, key, priority, deadline,
    });
    const failure = this.arrive(msg);
    return failure || msg.id;
  }

  request({ from, to, timeout, priority = 'normal', key = null, retry = null,
    send_timeout: sendTimeout = null }) {
    checkPositive('timeout', timeout, false);
    const address = parseAddress(to);
    this.checkPriority(priority);
    checkPositive('send_timeout', sendTimeout, true);
    const requester = this.actors.get(from);
    if (!requester || !requester.live) throw err.actorNotFound(idAddress(from));
    this.checkRetry(retry);
    // spec 5.1: the pending entry and its timer exist before the message is routed.
    const corr = this.nextCorr++;
    const deadline = this.now + timeout;
    const request = {
      corr, requester: from, requesterLabel: requester.label, issued: this.now, deadline,
      state: 'pending', timer: null,
    };
    this.requests.set(corr, request);
    this.pending.set(corr, request);
    // The planted bug (--bug inclusive-deadline) treats the deadline as inclusive: the timeout
    // timer is asked for just after it, so a reply at the deadline instant is processed first.
    const timeoutAt = this.inclusiveDeadline ? nextUp(deadline) : deadline;
    request.timer = this.setTimer(timeoutAt, () => {
      request.timer = null;
      if (request.state === 'pending') this.endRequest(request, 'timed_out', null);
    });
    const msg = this.newMessage({
      kind: 'request', from: requester.label, to: address.text, address, corr, deadline, key, priority,
    });
    this.arrive(msg);
    return corr;
  }

  reply({ from = null, corr }) {
    const sender = from === null ? null : this.actor(from);
    const request = this.requests.get(corr);
    const msg = this.newMessage({
      kind: 'reply', from: sender && sender.label, corr,
      to: request ? idAddress(request.requester) : null,
    });
    this.arrive(msg);
    return msg.id;
  }

  endRequest(request, outcome, replyId) {
    request.state = outcome;
    this.pending.delete(request.corr);
    this.outcomes[outcome] += 1;
    if (request.timer !== null) this.cancelTimer(request.timer);
    request.timer = null;
    this.emit('resolve', {
      corr: request.corr, outcome, requester: request.requesterLabel, msg: replyId,
    });
  }

  cancel({ corr }) {
    const request = this.pending.get(corr);
    if (!request) return false;
    this.endRequest(request, 'cancelled', null);
    return true;
  }

  // spec 9.3 arrival. Returns the BrokerError of a delivery refused during the call, if any.
  arrive(msg) {
    if (msg.kind === 'reply') return this.replyArrival(msg);
    if (msg.address.kind === 'topic') return this.publish(msg);
    let actor;
    try {
      actor = this.resolve(msg.address);
    } catch (e) {
      if (!(e instanceof BrokerError)) throw e;
      return this.failure(msg, e);
    }
    this.emit('route', { msg: msg.id, actor: actor.label });
    return this.toMailbox(msg, actor);
  }

  // spec 3.9: a copy for every live subscriber, or a dead letter when there is none.
  publish(msg) {
    const topic = msg.address.value;
    const live = (this.topics.get(topic) || []).filter((id) => this.actors.get(id).live);
    if (!live.length) {
      this.deadLetter(msg, 'no_subscribers');
      return null;
    }
    this.emit('route', { msg: msg.id, actor: msg.address.text });
    this.counters.delivered += 1;
    for (const id of live) {
      const to = idAddress(id);
      const copy = this.newMessage({
        kind: msg.kind, from: msg.from, to, address: parseAddress(to), corr: msg.corr,
        deadline: msg.deadline, key: msg.key, priority: msg.priority, own: false, copyOf: msg.id,
      });
      this.arrive(copy);
    }
    return null;
  }

  toMailbox(msg, actor) {
    if (actor.capacity !== null && this.size(actor) >= actor.capacity) {
      switch (actor.backpressure) {
        case 'reject':
          return this.failure(msg, err.mailboxFull(actor.label, actor.capacity));
        case 'drop_newest':
          this.deadLetter(msg, 'dropped_newest');
          return null;
        case 'drop_oldest': {
          const victim = actor.normal.length ? actor.normal.shift() : actor.high.shift();
          this.deadLetter(victim, 'dropped_oldest');
          break;
        }
        default:
          throw new Unsupported(`backpressure ${actor.backpressure}`);
      }
    }
    (msg.priority === 'high' ? actor.high : actor.normal).push(msg);
    this.emit('enqueue', { msg: msg.id, actor: actor.label, depth: this.size(actor) });
    if (!actor.working) this.wakes.push(actor.id);
    return null;
  }

  // spec 6.5 without retries: an original fails during the call (reject); a copy, which is
  // never refused, is dead-lettered with the error's code. A request's own message fails it.
  failure(msg, error) {
    if (msg.own) {
      this.counters.rejected += 1;
      this.emit('reject', { msg: msg.id, error: error.code });
    } else {
      this.deadLetter(msg, error.code);
    }
    const request = msg.own && msg.kind === 'request' ? this.pending.get(msg.corr) : null;
    if (request) this.endRequest(request, 'failed', null);
    return msg.own && msg.kind === 'tell' ? error : null;
  }

  // spec 5.4 to 5.6: the reply either ends its pending request or is dead-lettered.
  replyArrival(msg) {
    const request = this.requests.get(msg.corr);
    if (!request) {
      this.deadLetter(msg, 'unknown_correlation');
    } else if (request.state !== 'pending') {
      const reasons = {
        timed_out: 'late_reply', replied: 'duplicate_reply', cancelled: 'orphan_reply', failed: 'orphan_reply',
      };
      this.deadLetter(msg, reasons[request.state]);
    } else if (this.inclusiveDeadline ? this.now > request.deadline : this.now >= request.deadline) {
      // spec 5.5: the deadline is exclusive; a reply at it times the request out first.
      this.endRequest(request, 'timed_out', null);
      this.deadLetter(msg, 'late_reply');
    } else {
      this.counters.delivered += 1;
      this.endRequest(request, 'replied', msg.id);
    }
    return null;
  }

  // spec 4.5, 4.7, 9.3 dequeue.
  dequeue({ actor: id }) {
    const actor = this.actor(id);
    if (!actor.live) return null;
    for (;;) {
      const msg = actor.high.length ? actor.high.shift() : actor.normal.shift();
      if (!msg) {
        actor.working = false;
        return null;
      }
      if (msg.deadline !== null && this.now >= msg.deadline) {
        this.deadLetter(msg, 'expired');
        continue;
      }
      this.counters.delivered += 1;
      actor.working = true;
      this.emit('dequeue', { msg: msg.id, actor: actor.label });
      return msg.id;
    }
  }

  done({ actor: id }) {
    this.actor(id).working = false;
  }

  fire({ timer }) {
    const callback = this.timers.get(timer);
    if (!callback) return; // cancelled or unknown: nothing is due
    this.timers.delete(timer);
    callback();
  }

  // -- reads (spec 9.2) ------------------------------------------------------------------------

  stats() {
    const count = (map) => Object.fromEntries([...map].map(([k, v]) => [k, v.length]));
    return {
      ...this.counters,
      dead_letters: Object.fromEntries(this.deadLetters),
      outcomes: { ...this.outcomes },
      actors: this.actors.size,
      pools: Object.fromEntries([...this.pools].map(([k, p]) => [k, p.members.length])),
      topics: count(this.topics),
    };
  }
}

// ---------------------------------------------------------------------------------------------
// The protocol: one request line in, one answer line out.

const OPERATIONS = {
  register: 'register', unregister: 'unregister', stop: 'stop', start: 'start',
  create_pool: 'createPool', join: 'join', leave: 'leave', provide: 'provide',
  subscribe: 'subscribe', unsubscribe: 'unsubscribe', send: 'send', request: 'request',
  reply: 'reply', cancel: 'cancel', dequeue: 'dequeue', done: 'done', fire: 'fire',
};

class Port {
  constructor(options) {
    this.options = options;
    this.broker = null;
  }

  name() {
    return this.options.inclusiveDeadline ? 'node-port+inclusive-deadline' : 'node-port';
  }

  handle(req) {
    if (req === null || typeof req !== 'object' || Array.isArray(req)) {
      throw new Unsupported('a request must be a JSON object');
    }
    const { op } = req;
    if (op === 'hello') {
      return { ok: true, protocol: PROTOCOL, spec_version: SPEC_VERSION, name: this.name(), features: FEATURES };
    }
    if (op === 'reset') {
      if (typeof req.seed !== 'string' || !/^[0-9]+$/.test(req.seed)) {
        throw new Unsupported('reset needs a seed, an unsigned 64-bit integer as a decimal string');
      }
      this.broker = new Broker(req.seed, this.options);
      return { ok: true };
    }
    if (!this.broker) throw new Unsupported(`${op} before reset`);
    const b = this.broker;
    switch (op) {
      case 'stats': return { ok: true, stats: b.stats() };
      case 'pending': return { ok: true, pending: [...b.pending.keys()] };
      case 'outcome': {
        const request = b.requests.get(req.corr);
        return { ok: true, outcome: request && request.state !== 'pending' ? request.state : null };
      }
      case 'depth':
      case 'load': {
        const actor = b.actors.get(req.actor);
        if (!actor) return { ok: true, [op]: null };
        return { ok: true, [op]: op === 'depth' ? b.size(actor) : b.load(actor.id) };
      }
      default: break;
    }
    const method = Object.prototype.hasOwnProperty.call(OPERATIONS, op) ? OPERATIONS[op] : null;
    if (!method) throw new Unsupported(`unknown op ${JSON.stringify(op)}`);
    if (typeof req.t !== 'number') throw new Unsupported(`${op} needs a time t`);
    const { result, error, effects } = b.run(req.t, () => b[method](req));
    const answer = { ok: true, result, error: error ? error.code : null };
    if (error) answer.error_fields = error.fields;
    answer.effects = effects;
    return answer;
  }

  answer(line) {
    let req;
    try {
      req = JSON.parse(line);
    } catch (e) {
      return { ok: false, problem: `not a JSON line: ${e.message}` };
    }
    try {
      return this.handle(req);
    } catch (e) {
      if (e instanceof Unsupported) return { ok: false, problem: `node-port does not support ${e.message}` };
      process.stderr.write(`${e.stack}\n`);
      return { ok: false, problem: `internal error: ${e.message}` };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Self-test: spec 1.2's test vectors.

function selfTest() {
  const hex = (x) => `0x${x.toString(16).toUpperCase().padStart(16, '0')}`;
  const draws = (seed, n, f) => { const r = new SplitMix64(seed); return Array.from({ length: n }, () => f(r)); };
  const checks = [
    ['seed 0 next()', draws(0, 3, (r) => hex(r.next())),
      ['0xE220A8397B1DCDAF', '0x6E789E6AA1B965F4', '0x06C45D188009454F']],
    ['seed 1234567 next()', draws(1234567, 3, (r) => r.next().toString()),
      ['6457827717110365317', '3203168211198807973', '9817491932198370423']],
    ['seed 42 below(6)', draws(42, 8, (r) => Number(r.below(6))), [4, 0, 1, 2, 0, 5, 1, 4]],
    ['seed 42 unit() (a fresh stream)', draws(42, 3, (r) => r.unit()),
      [0.7415648787718233, 0.1599103928769201, 0.27860113025513866]],
    ['seed 0 below(2^63 + 1)', (() => {
      const r = new SplitMix64(0);
      const v = r.below((1n << 63n) + 1n);
      const calls = new SplitMix64(0);
      for (let i = 0; i < 3; i += 1) calls.next();
      return [v.toString(), r.state === calls.state];
    })(), ['243808509735772839', true]],
  ];
  let ok = true;
  for (const [what, got, want] of checks) {
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      ok = false;
      process.stderr.write(`self-test ${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}\n`);
    }
  }
  process.stdout.write(ok ? 'ok\n' : 'FAILED\n');
  return ok;
}

// Answers are written in the traces' canonical form (keys sorted, no whitespace, exponents as
// Python writes them), so that a driver comparing answer lines byte for byte sees equal ones.
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  if (typeof value === 'number') return JSON.stringify(value).replace(/e([+-])(\d)$/, 'e$10$2');
  return JSON.stringify(value);
}

function main(argv) {
  const options = { inclusiveDeadline: false };
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--self-test') {
      process.exitCode = selfTest() ? 0 : 1;
      return;
    }
    if (argv[i] === '--bug' && argv[i + 1] === 'inclusive-deadline') {
      options.inclusiveDeadline = true;
      i += 1;
    } else {
      process.stderr.write(`usage: node port.js [--bug inclusive-deadline | --self-test]\n`);
      process.exitCode = 2;
      return;
    }
  }
  const port = new Port(options);
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on('line', (line) => {
    if (!line.trim()) return;
    process.stdout.write(`${canonical(port.answer(line))}\n`);
  });
  lines.on('close', () => { process.exitCode = 0; });
}

if (require.main === module) main(process.argv.slice(2));

module.exports = { SplitMix64, Broker, Port };
