#!/usr/bin/env node
'use strict';

// A DTLS-PSK client made with node-dtls-client, for t/interop_node.t:
// handshake, COUNT datagrams echoed back one by one and checked, close.
//
//	node client.js --host 127.0.0.1 --port P --identity ID --key HEX
//	    [--cipher TLS_PSK_WITH_AES_128_CCM_8] [--count N] [--size-max N]
//	    [--timeout MS] [--modules DIR]
//
// Prints one line per step: "handshake ok cipher=NAME", "echo ok n=N",
// "closed", or "error: ..."; exits 0 when every step worked, 1 otherwise.
//
// node-dtls-client is looked up in --modules (a node_modules directory),
// else $NGX_DTLS_NODE_MODULES, else <repo>/build/interop-node/node_modules
// (where scripts/interop-deps.sh installs it), else as usual.

const path = require('path');
const fs = require('fs');
const { createRequire } = require('module');
const { pathToFileURL } = require('url');

function usage(msg) {
	process.stdout.write(`error: ${msg}\n`);
	process.exit(2);
}

const opts = {
	host: '127.0.0.1', port: 0, identity: '', key: '', cipher: '',
	count: 1, 'size-max': 100, timeout: 5000, modules: '',
};

const argv = process.argv.slice(2);

for (let i = 0; i < argv.length; i++) {
	const m = /^--([\w-]+)$/.exec(argv[i]);
	if (!m || !(m[1] in opts) || i + 1 >= argv.length) {
		usage(`bad argument ${argv[i]}`);
	}
	opts[m[1]] = argv[++i];
}

for (const n of ['port', 'count', 'size-max', 'timeout']) {
	opts[n] = Number(opts[n]);
	if (!Number.isInteger(opts[n]) || opts[n] < 0) {
		usage(`bad --${n}`);
	}
}

if (!opts.port || !opts.identity || !/^([0-9a-fA-F]{2})+$/.test(opts.key)) {
	usage('--port, --identity and --key HEX are required');
}

function findModule() {
	const dirs = [opts.modules, process.env.NGX_DTLS_NODE_MODULES,
		path.resolve(__dirname, '../../../build/interop-node/node_modules')];

	for (const dir of dirs) {
		if (dir && fs.existsSync(path.join(dir, 'node-dtls-client'))) {
			const req = createRequire(path.join(path.resolve(dir), 'x.js'));
			return req.resolve('node-dtls-client');
		}
	}

	return require.resolve('node-dtls-client');
}

async function main() {
	const entry = findModule();
	const { dtls } = await import(pathToFileURL(entry).href);
	const { CipherSuites } = await import(pathToFileURL(
		path.join(path.dirname(entry), 'DTLS', 'CipherSuites.js')).href);

	const names = {};
	for (const [name, suite] of Object.entries(CipherSuites)) {
		names[suite.id] = name;
	}

	// everything below is bounded by this watchdog

	const total = opts.timeout * (2 + opts.count);
	const watchdog = setTimeout(() => {
		out(`error: timed out after ${total} ms`);
		process.exit(1);
	}, total);

	let socket;
	let current = null;         // { resolve, reject, timer } of a wait

	function out(line) {
		process.stdout.write(line + '\n');
	}

	function wait(what, ms) {
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				current = null;
				reject(new Error(`${what} timed out after ${ms} ms`));
			}, ms);
			current = { resolve, reject, timer, what };
		});
	}

	function settle(err, value) {
		const c = current;
		if (!c) {
			return false;
		}
		current = null;
		clearTimeout(c.timer);
		err ? c.reject(err) : c.resolve(value);
		return true;
	}

	const options = {
		type: 'udp4',
		address: opts.host,
		port: opts.port,
		psk: { [opts.identity]: Buffer.from(opts.key, 'hex') },
		timeout: opts.timeout,
	};

	if (opts.cipher) {
		options.ciphers = opts.cipher.split(',');
		for (const c of options.ciphers) {
			if (!(c in CipherSuites)) {
				usage(`unknown cipher ${c}`);
			}
		}
	}

	let closed = false;
	const handshake = wait('handshake', opts.timeout + 500);

	socket = dtls.createSocket(options)
		.on('connected', () => settle(null))
		.on('message', (msg) => {
			if (!settle(null, msg)) {
				out(`error: unexpected datagram of ${msg.length} bytes`);
			}
		})
		.on('error', (e) => {
			if (!settle(e)) {
				out(`error: ${e.message}`);
			}
		})
		.on('close', () => {
			closed = true;
			settle(new Error('connection closed by peer'));
		});

	try {
		await handshake;
	} catch (e) {
		out(`error: handshake: ${e.message}`);
		process.exit(1);
	}

	let cipher = '?';
	try {
		const id = socket.recordLayer.currentWriteEpoch
			.connectionState.cipherSuite.id;
		cipher = names[id] || `0x${id.toString(16)}`;
	} catch (e) { /* internals changed: leave it unknown */ }

	out(`handshake ok cipher=${cipher}`);

	// datagrams of sizes from 1 to size-max, the last one size-max,
	// each with its number so that a reordered echo is caught

	let n = 0;

	for (let i = 0; i < opts.count; i++) {
		const size = opts.count === 1 ? opts['size-max']
			: 1 + Math.floor(i * (opts['size-max'] - 1) / (opts.count - 1));

		const data = Buffer.alloc(size);
		for (let j = 0; j < size; j++) {
			data[j] = (i * 7 + j * 13) & 0xff;
		}
		if (size >= 4) {
			data.writeUInt32BE(i, 0);
		}

		const reply = wait(`echo ${i + 1} (${size} bytes)`, opts.timeout);

		try {
			socket.send(data);
			const got = await reply;
			if (!Buffer.isBuffer(got) || !got.equals(data)) {
				throw new Error(`echo ${i + 1} (${size} bytes) differs: `
					+ `got ${got ? got.length : 0} bytes`);
			}
		} catch (e) {
			out(`error: ${e.message}`);
			break;
		}

		n++;
	}

	if (opts.count) {
		if (n === opts.count) {
			out(`echo ok n=${n}`);
		} else {
			out(`echo failed n=${n}`);
		}
	}

	// close() sends a close_notify alert, then closes the UDP socket

	if (!closed) {
		const done = new Promise((resolve) => {
			socket.close(() => resolve());
			setTimeout(resolve, opts.timeout);
		});
		await done;
		out('closed');
	}

	clearTimeout(watchdog);
	process.exit(n === opts.count ? 0 : 1);
}

main().catch((e) => {
	process.stdout.write(`error: ${e && e.stack ? e.stack.split('\n')[0] : e}\n`);
	process.exit(1);
});
