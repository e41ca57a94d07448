// Many graphql-ws subscribers in one Node process, for the fault suite (tests/tests/e2e/faults).
//
//   node fleet.mjs <config.json>
//
// The config is {"subscribers": [{"id", "token", "urls": [...], "subs": [{"c", "after"}],
// "startDelayMs", "mode"}]}. Each subscriber is one WebSocket (one graphql-ws client) with one
// `messageAdded` subscription per conversation. When its connection drops it moves to the next
// URL and resubscribes every conversation from the last seq it saw, as a frontend that resumes
// after a node failure does. It prints one JSON line per event on stdout:
//   {"k":"conn","s":id,"url":u,"t":ms}           connection acknowledged
//   {"k":"close","s":id,"code":n,"reason":r,"t"} connection lost (or refused)
//   {"k":"sub","s":id,"c":conv,"after":n,"t"}    subscribe sent
//   {"k":"msg","s":id,"c":conv,"seq":n,"t":ms}   message received
//   {"k":"err","s":id,"c":conv,"e":text,"t"}     the server ended one subscription with an error
// and exits when stdin closes (the test holds it open for as long as it wants the fleet).
import { readFileSync } from "node:fs";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const query = `subscription($c: UUID!, $after: Int) {
  messageAdded(conversationId: $c, afterSeq: $after) { seq }
}`;
// "mode": "events" subscribers take one `events` subscription with a resume point per
// conversation instead (every event of the user; only MessageAdded ones are printed).
const eventsQuery = `subscription($after: [ResumeFrom!]) {
  events(after: $after) { __typename ... on MessageAddedEvent { message { conversationId seq } } }
}`;
const out = [];
function emit(event) {
  event.t = Date.now();
  out.push(JSON.stringify(event));
  if (out.length >= 256) flush();
}
// One write per batch: 1,000 subscribers each writing their own lines would cost more CPU
// than the server under test gets.
function flush() {
  if (out.length > 0) process.stdout.write(out.join("\n") + "\n");
  out.length = 0;
}
setInterval(flush, 5);

const jitter = (min, max) => min + Math.random() * (max - min);

class Subscriber {
  constructor(spec) {
    this.spec = spec;
    this.last = new Map(spec.subs.map((s) => [s.c, s.after]));
    this.attempt = 0;
    this.generation = 0;
    this.client = null;
  }

  connect() {
    const generation = ++this.generation;
    const url = this.spec.urls[this.attempt % this.spec.urls.length];
    const client = createClient({
      url,
      webSocketImpl: WebSocket,
      connectionParams: { token: this.spec.token },
      retryAttempts: 0,
      lazy: false,
      onNonLazyError: () => {},
      on: {
        connected: () => {
          if (generation === this.generation) emit({ k: "conn", s: this.spec.id, url });
        },
        closed: (event) => this.lost(generation, event && event.code, event && event.reason),
      },
    });
    this.client = client;
    if (this.spec.mode === "events") this.subscribeEvents(generation, client);
    else for (const c of this.last.keys()) this.subscribe(generation, client, c);
  }

  subscribeEvents(generation, client) {
    const after = [...this.last].map(([conversationId, seq]) => ({ conversationId, seq }));
    for (const { conversationId, seq } of after) emit({ k: "sub", s: this.spec.id, c: conversationId, after: seq });
    const again = () =>
      setTimeout(() => {
        if (generation === this.generation) this.subscribeEvents(generation, client);
      }, 500);
    client.subscribe(
      { query: eventsQuery, variables: { after } },
      {
        next: (result) => {
          if (generation !== this.generation) return;
          if (result.errors) {
            emit({ k: "err", s: this.spec.id, c: "*", e: JSON.stringify(result.errors) });
            return;
          }
          const event = result.data.events;
          if (event.__typename !== "MessageAddedEvent") return;
          const { conversationId: c, seq } = event.message;
          if (this.last.has(c) && seq > this.last.get(c)) this.last.set(c, seq);
          emit({ k: "msg", s: this.spec.id, c, seq });
        },
        error: (err) => {
          if (generation !== this.generation) return;
          if (Array.isArray(err)) {
            emit({ k: "err", s: this.spec.id, c: "*", e: JSON.stringify(err) });
            again();
          } else {
            this.lost(generation, err && err.code, err && (err.reason || err.message));
          }
        },
        complete: () => {
          if (generation !== this.generation) return;
          emit({ k: "err", s: this.spec.id, c: "*", e: "completed by the server" });
          again();
        },
      },
    );
  }

  subscribe(generation, client, c) {
    const after = this.last.get(c);
    emit({ k: "sub", s: this.spec.id, c, after });
    client.subscribe(
      { query, variables: { c, after } },
      {
        next: (result) => {
          if (generation !== this.generation) return;
          if (result.errors) {
            emit({ k: "err", s: this.spec.id, c, e: JSON.stringify(result.errors) });
            return;
          }
          const seq = result.data.messageAdded.seq;
          // Resume from the highest seq seen: a duplicate or a step back is the server's
          // fault and is reported by the test, not hidden here.
          if (seq > this.last.get(c)) this.last.set(c, seq);
          emit({ k: "msg", s: this.spec.id, c, seq });
        },
        error: (err) => {
          if (generation !== this.generation) return;
          if (Array.isArray(err)) {
            // A GraphQL error on one operation (say the database is down during its replay):
            // the socket is fine, so subscribe that conversation again after a pause.
            emit({ k: "err", s: this.spec.id, c, e: JSON.stringify(err) });
            setTimeout(() => {
              if (generation === this.generation) this.subscribe(generation, client, c);
            }, 500);
          } else {
            this.lost(generation, err && err.code, err && (err.reason || err.message));
          }
        },
        complete: () => {
          if (generation !== this.generation) return;
          emit({ k: "err", s: this.spec.id, c, e: "completed by the server" });
          setTimeout(() => {
            if (generation === this.generation) this.subscribe(generation, client, c);
          }, 500);
        },
      },
    );
  }

  lost(generation, code, reason) {
    if (generation !== this.generation) return;
    this.generation += 1;
    emit({ k: "close", s: this.spec.id, code: code ?? 0, reason: reason ?? "" });
    const client = this.client;
    this.client = null;
    if (client) client.dispose();
    // 1013 is "try again later" from a server that is up: come back to it; anything else
    // may be a dead node, so move on to the next URL.
    if (code !== 1013) this.attempt += 1;
    // 1013 is "try again later" (admission limit or slow consumer): back off longer, with
    // jitter so a storm does not come back in lockstep.
    const delay = code === 1013 ? jitter(500, 2500) : jitter(100, 600);
    setTimeout(() => this.connect(), delay);
  }
}

// graphql-ws can reject a promise of its own nobody holds when a socket is closed during the
// handshake (seen with 1013 from an admission limit); the `closed` handler above already
// reconnects, so that must not end the whole fleet.
let stray = 0;
process.on("unhandledRejection", () => {
  stray += 1;
  if (stray === 1) console.error("fleet: ignoring graphql-ws's unhandled rejections (counted at exit)");
});

for (const spec of config.subscribers) {
  const sub = new Subscriber(spec);
  setTimeout(() => sub.connect(), spec.startDelayMs || 0);
}

process.stdin.resume();
process.stdin.on("end", () => {
  flush();
  if (stray > 0) console.error(`fleet: ${stray} unhandled rejections from graphql-ws`);
  process.exit(0);
});
