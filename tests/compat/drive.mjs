// Drives the published @trigger.dev/sdk against a live Waitpoint server and
// prints what it saw as one JSON object; tests/test_compat.py checks it.
import { configure, wait } from "@trigger.dev/sdk";

const baseURL = process.env.WAITPOINT_URL;
const secretKey = process.env.WAITPOINT_API_KEY;
configure({ baseURL, secretKey });

const seen = {};
const run = `compat-${Date.now()}`;

// createToken: durations, a Date, tags, idempotency.
const a = await wait.createToken({ timeout: "1h", tags: [run, "kind:a"], idempotencyKey: `${run}-a` });
const aAgain = await wait.createToken({ idempotencyKey: `${run}-a`, idempotencyKeyTTL: "1h" });
const b = await wait.createToken({ timeout: new Date(Date.now() + 3_600_000), tags: run });
const c = await wait.createToken({ tags: [run, "kind:c"] });
const quick = await wait.createToken({ timeout: "1s", tags: [`${run}-quick`] });
seen.created = { a, aAgain, b, c };

// retrieveToken before completion.
seen.waiting = await wait.retrieveToken(a);

// completeToken with the SDK, and the callback URL with plain fetch.
seen.completeResult = await wait.completeToken(a, { status: "approved", by: "sdk" });
const callbackResponse = await fetch(c.url, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ status: "rejected", by: "callback" }),
});
seen.callbackStatus = callbackResponse.status;
seen.completedA = await wait.retrieveToken(a.id);
seen.completedC = await wait.retrieveToken(c);

// A timeout surfaces as the SDK's WaitpointTimeoutError.
await new Promise((resolve) => setTimeout(resolve, 1500));
const timedOut = await wait.retrieveToken(quick);
seen.timedOut = {
  status: timedOut.status,
  errorName: timedOut.error?.name,
  errorMessage: timedOut.error?.message,
  output: timedOut.output ?? null,
};

// listTokens: auto-pagination across pages, and filters.
const all = [];
for await (const token of wait.listTokens({ tags: [run], limit: 1 })) all.push(token.id);
seen.listedAll = all;
const completed = [];
for await (const token of wait.listTokens({ tags: run, status: ["COMPLETED"], period: "1h" }))
  completed.push(token.id);
seen.listedCompleted = completed;
const byKey = [];
for await (const token of wait.listTokens({ idempotencyKey: `${run}-a`, from: new Date(Date.now() - 60_000), to: new Date() }))
  byKey.push(token.id);
seen.listedByKey = byKey;

// An unknown id is an error the SDK raises.
try {
  await wait.retrieveToken("waitpoint_doesnotexist");
  seen.unknown = "no error";
} catch (error) {
  seen.unknown = { status: error.status, message: error.message };
}

process.stdout.write(JSON.stringify(seen, (key, value) => value, 0));
