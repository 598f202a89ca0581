// Screenshot of a page that needs a session cookie, through headless Chromium's DevTools protocol
// (Node >= 22: global fetch and WebSocket). Usage:
//   node editor_screenshot.mjs <chromium> <url> <cookie name> <cookie value> <out.png> [width height wait_ms]
import { spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [chromium, url, cookieName, cookieValue, out, width = '1600', height = '900', waitMs = '8000'] =
	process.argv.slice(2);
const port = 9300 + Math.floor(Math.random() * 500);
const profile = mkdtempSync(join(tmpdir(), 'chromium-'));
const browser = spawn(chromium, [
	'--headless=new', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--remote-debugging-port=${port}`,
	`--user-data-dir=${profile}`, `--window-size=${width},${height}`, 'about:blank',
], { stdio: 'ignore' });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
try {
	let target;
	for (let i = 0; i < 100 && !target; i++) {
		try {
			const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
			target = list.find((t) => t.type === 'page');
		} catch {
			await sleep(200);
		}
	}
	if (!target) throw new Error('chromium did not start');
	const ws = new WebSocket(target.webSocketDebuggerUrl);
	await new Promise((r) => ws.addEventListener('open', r, { once: true }));
	let id = 0;
	const pending = new Map();
	ws.addEventListener('message', (ev) => {
		const msg = JSON.parse(ev.data);
		if (msg.id && pending.has(msg.id)) pending.get(msg.id)(msg);
	});
	const send = (method, params = {}) =>
		new Promise((resolve, reject) => {
			const n = ++id;
			pending.set(n, (msg) => (msg.error ? reject(new Error(JSON.stringify(msg.error))) : resolve(msg.result)));
			ws.send(JSON.stringify({ id: n, method, params }));
		});
	const origin = new URL(url);
	await send('Network.enable');
	await send('Network.setCookie', { name: cookieName, value: cookieValue, domain: origin.hostname, path: '/' });
	await send('Emulation.setDeviceMetricsOverride', {
		width: Number(width), height: Number(height), deviceScaleFactor: 1, mobile: false,
	});
	await send('Page.enable');
	await send('Page.navigate', { url });
	await sleep(Number(waitMs));
	const shot = await send('Page.captureScreenshot', { format: 'png' });
	writeFileSync(out, Buffer.from(shot.data, 'base64'));
	ws.close();
} finally {
	browser.kill('SIGKILL');
}
