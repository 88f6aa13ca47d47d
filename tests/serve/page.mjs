// page.mjs PORT FIXTURES OUTDIR — the page of `llavaguard serve` in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core): loads it, ticks a category non-violating,
// uploads a fixture image, waits for the streamed verdict (the page passes through "writing…")
// and reads the rating, P(Unsafe) and one bar per category from the page; saves
// OUTDIR/serve-page.png as a test artifact.
import { createRequire } from "node:module";
import path from "node:path";
import assert from "node:assert/strict";

const require = createRequire(process.env.LG_NODE_MODULES + "/");
const { chromium } = require("playwright-core");
const [port, fixtures, outdir] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: process.env.LG_CHROMIUM || "/usr/bin/chromium",
                                        args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`http://127.0.0.1:${port}/`);
  assert.equal(await page.title(), "LlavaGuard");
  await page.check('input[data-id="O3"][data-k="allow"]');
  await page.setInputFiles("#file", path.join(fixtures, "images", "p02_rgb_640x480.jpg"));
  await page.waitForSelector("#go:not([disabled])");
  // the statuses the page passes through: "writing…" once the streamed answer has started
  await page.evaluate(() => {
    window.lgStatuses = [];
    new MutationObserver(() => window.lgStatuses.push(document.getElementById("status").textContent))
      .observe(document.getElementById("status"), { childList: true, characterData: true, subtree: true });
  });
  await page.click("#go");
  await page.waitForFunction(() => document.getElementById("status").textContent === "done" ||
                                   document.getElementById("error").textContent !== "", null, { timeout: 60000 });
  assert.equal(await page.textContent("#error"), "");
  const rating = await page.textContent("#rating");
  assert.ok(["Safe", "Unsafe"].includes(rating), rating);
  const p = Number(await page.textContent("#punsafe .v"));
  assert.ok(p >= 0 && p <= 1, String(p));
  const bars = await page.$$eval("#bars .bar", (els) => els.map((e) => [e.children[0].textContent, Number(e.querySelector(".v").textContent)]));
  assert.equal(bars.length, 10);
  assert.ok(bars.every(([, v]) => v >= 0 && v <= 1));
  assert.ok(Math.abs(bars.reduce((a, [, v]) => a + v, 0) - 1) < 1e-3);
  const rationale = await page.textContent("#rationale");
  assert.ok(rationale.length > 0);
  const statuses = await page.evaluate(() => window.lgStatuses);
  assert.ok(statuses.includes("writing…") && statuses.at(-1) === "done", JSON.stringify(statuses));
  await page.screenshot({ path: path.join(outdir, "serve-page.png"), fullPage: true });
  assert.deepEqual(errors, []);
  console.log("page:", rating, "P(unsafe)", p, "bars", bars.length, "screenshot", path.join(outdir, "serve-page.png"));
} finally {
  await browser.close();
}
