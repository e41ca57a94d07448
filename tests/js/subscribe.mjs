// A frontend's view of SyncChat through the graphql-ws library (graphql-transport-ws).
//
//   node subscribe.mjs <count> <token> <conversationId> <afterSeq> <url> [<url> ...]
//
// Subscribes to messageAdded and prints one JSON line per message. When a connection is
// lost it moves to the next URL and resubscribes with the last seq it saw, as a client
// that resumes after a node failure does. Exits 0 after <count> messages, 1 on giving up.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [count, token, conversationId, afterSeq, ...urls] = process.argv.slice(2);
const wanted = Number(count);
let last = Number(afterSeq);
let received = 0;
const query = `subscription($c: UUID!, $after: Int) {
  messageAdded(conversationId: $c, afterSeq: $after) { seq body }
}`;

function runOnce(url) {
  return new Promise((resolve) => {
    const client = createClient({
      url,
      webSocketImpl: WebSocket,
      connectionParams: { token },
      retryAttempts: 0,
      lazy: false,
      on: { connected: () => console.error(`connected ${url}`) },
    });
    client.subscribe(
      { query, variables: { c: conversationId, after: last } },
      {
        next: (result) => {
          if (result.errors) {
            console.log(JSON.stringify({ errors: result.errors }));
            return;
          }
          const m = result.data.messageAdded;
          last = m.seq;
          received += 1;
          console.log(JSON.stringify(m));
          if (received >= wanted) {
            client.dispose();
            resolve("done");
          }
        },
        error: (err) => {
          const detail = err && err.code ? `close ${err.code} ${err.reason}` : JSON.stringify(err);
          console.error(`subscription ended: ${detail}`);
          if (err && err.code) console.log(JSON.stringify({ closed: err.code, reason: err.reason }));
          client.dispose();
          resolve(Array.isArray(err) ? "refused" : "lost");
        },
        complete: () => resolve("complete"),
      },
    );
  });
}

let attempt = 0;
const deadline = Date.now() + 60_000;
while (received < wanted && Date.now() < deadline) {
  const url = urls[attempt % urls.length];
  attempt += 1;
  const outcome = await runOnce(url);
  if (outcome === "done") break;
  if (outcome === "refused") process.exit(2);
  await new Promise((r) => setTimeout(r, 200));
}
process.exit(received >= wanted ? 0 : 1);
