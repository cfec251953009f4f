#!/usr/bin/env node
'use strict';

// A UDP backend for t/dtls_proxy_protocol.t that parses the PROXY protocol
// version 2 header of every datagram with proxy-protocol-js (npm) and
// answers each datagram with a line saying what it parsed: the same line
// as t/interop/proxyproto/main.go (go-proxyproto), with parser=node.
//
//	node backend.js --listen 127.0.0.1:PORT [--modules DIR]
//
//	pp parser=node hlen=N cmd=PROXY proto=UDP4|UDP6 src=IP sport=N dst=IP
//	    dport=N tlvs=0x02,0x20,... authority=S ssl.client=N ssl.verify=N
//	    ssl.tlvs=0x21,... ssl.version=S ssl.cipher=S ssl.cn=S psk=S len=N
//	    data=S
//
// proxy-protocol-js parses the signature, version, command, family,
// protocol and the addresses; its result's data is everything after the
// addresses, TLVs and payload together (it does not read the length
// field), so the TLVs are split here, by the header's length.  Values are
// escaped: a byte outside 0x21-0x7e, and "%", as %XX.  A datagram that
// does not parse gets "pp parser=node error=MESSAGE len=N".  Every line is
// also printed on stdout; on SIGTERM, "summary datagrams=N parsed=N
// failed=N".
//
// proxy-protocol-js is looked up in --modules (a node_modules directory),
// else <repo>/build/interop-proxyproto-node/node_modules, where
// scripts/interop-deps.sh installs it.

const dgram = require('dgram');
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const opts = { listen: '', modules: '' };
const argv = process.argv.slice(2);

for (let i = 0; i < argv.length; i++) {
	const m = /^--(\w+)$/.exec(argv[i]);
	if (!m || !(m[1] in opts) || i + 1 >= argv.length) {
		process.stdout.write(`error: bad argument ${argv[i]}\n`);
		process.exit(2);
	}
	opts[m[1]] = argv[++i];
}

const listen = /^\[?([^\]]+)\]?:(\d+)$/.exec(opts.listen);

if (!listen) {
	process.stdout.write('error: --listen ADDRESS:PORT\n');
	process.exit(2);
}

function load() {
	const dirs = [opts.modules, path.resolve(__dirname,
		'../../../build/interop-proxyproto-node/node_modules')];

	for (const dir of dirs) {
		if (dir && fs.existsSync(path.join(dir, 'proxy-protocol-js'))) {
			const req = createRequire(path.join(path.resolve(dir), 'x.js'));
			return req('proxy-protocol-js');
		}
	}

	return require('proxy-protocol-js');
}

const pp = load();

const PP2_TYPE_AUTHORITY = 0x02;
const PP2_TYPE_SSL = 0x20;
const PP2_SUBTYPE_SSL_VERSION = 0x21;
const PP2_SUBTYPE_SSL_CN = 0x22;
const PP2_SUBTYPE_SSL_CIPHER = 0x23;
const PSK_IDENTITY = 0xe4;

function escape(b) {
	let s = '';

	for (const c of b) {
		s += (c < 0x21 || c > 0x7e || c === 0x25)
			? '%' + c.toString(16).toUpperCase().padStart(2, '0')
			: String.fromCharCode(c);
	}

	return s;
}

function hex(t) {
	return '0x' + t.toString(16).padStart(2, '0');
}

// Type-Length-Value vectors, every byte accounted for

function splitTLVs(b) {
	const tlvs = [];
	let i = 0;

	while (i < b.length) {
		if (b.length - i < 3) {
			throw new Error('truncated TLV');
		}

		const len = (b[i + 1] << 8) | b[i + 2];

		if (i + 3 + len > b.length) {
			throw new Error('truncated TLV');
		}

		tlvs.push({ type: b[i], value: b.subarray(i + 3, i + 3 + len) });
		i += 3 + len;
	}

	return tlvs;
}

// an address as go's net.IP prints it: RFC 5952 for IPv6 (the URL parser
// compresses the longest run of zeros)

function ip(address) {
	if (address.length === 4) {
		return address.join('.');
	}

	const groups = [];

	for (let i = 0; i < 16; i += 2) {
		groups.push(((address[i] << 8) | address[i + 1]).toString(16));
	}

	return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

function describe(d) {
	const h = pp.V2ProxyProtocol.parse(d);
	const f = ['pp parser=node'];

	// the length field: the addresses, then the TLVs

	const length = (d[14] << 8) | d[15];
	const family = new pp.AddressFamily(h.addressFamilyType);
	const addrLen = family.getLength();

	if (16 + length > d.length) {
		throw new Error(`header of ${16 + length} bytes in ${d.length}`);
	}

	f.push(`hlen=${16 + length}`);
	f.push(h.command === pp.Command.PROXY ? 'cmd=PROXY'
		: h.command === pp.Command.LOCAL ? 'cmd=LOCAL' : `cmd=${h.command}`);

	const dgramProto = h.transportProtocol === pp.TransportProtocol.DGRAM;

	if (dgramProto && h.addressFamilyType === pp.AddressFamilyType.INET) {
		f.push('proto=UDP4');
	} else if (dgramProto
		&& h.addressFamilyType === pp.AddressFamilyType.INET6)
	{
		f.push('proto=UDP6');
	} else {
		f.push(`proto=${hex(h.addressFamilyType | h.transportProtocol)}`);
	}

	const a = h.proxyAddress;

	if (a instanceof pp.IPv4ProxyAddress || a instanceof pp.IPv6ProxyAddress) {
		f.push(`src=${ip(a.sourceAddress.address)} sport=${a.sourcePort}`
			+ ` dst=${ip(a.destinationAddress.address)}`
			+ ` dport=${a.destinationPort}`);
	}

	const tlvs = splitTLVs(h.data.subarray(0, length - addrLen));
	const payload = h.data.subarray(length - addrLen);

	f.push('tlvs=' + tlvs.map((t) => hex(t.type)).join(','));

	for (const t of tlvs) {
		if (t.type === PP2_TYPE_AUTHORITY) {
			f.push('authority=' + escape(t.value));

		} else if (t.type === PP2_TYPE_SSL) {
			if (t.value.length < 5) {
				throw new Error('SSL TLV too short');
			}

			const v = t.value;
			const client = v[0];
			const verify = ((v[1] << 24) >>> 0) + (v[2] << 16) + (v[3] << 8)
				+ v[4];
			const subs = splitTLVs(t.value.subarray(5));

			f.push(`ssl.client=${client} ssl.verify=${verify}`);
			f.push('ssl.tlvs=' + subs.map((s) => hex(s.type)).join(','));

			const sub = (type) => subs.find((s) => s.type === type);

			for (const [type, name] of [[PP2_SUBTYPE_SSL_VERSION, 'version'],
				[PP2_SUBTYPE_SSL_CIPHER, 'cipher'], [PP2_SUBTYPE_SSL_CN, 'cn']])
			{
				if (sub(type)) {
					f.push(`ssl.${name}=` + escape(sub(type).value));
				}
			}

		} else if (t.type === PSK_IDENTITY) {
			f.push('psk=' + escape(t.value));
		}
	}

	f.push(`len=${payload.length}`, 'data=' + escape(payload.subarray(0, 32)));

	return f.join(' ');
}

const n = { datagrams: 0, parsed: 0, failed: 0 };
const sock = dgram.createSocket(listen[1].includes(':') ? 'udp6' : 'udp4');

sock.on('message', (d, peer) => {
	let line;

	n.datagrams++;

	try {
		line = describe(d);
		n.parsed++;

	} catch (e) {
		n.failed++;
		line = `pp parser=node error=${escape(Buffer.from(String(e.message)))}`
			+ ` len=${d.length}`;
	}

	process.stdout.write(line + '\n');
	sock.send(line, peer.port, peer.address);
});

sock.on('error', (e) => {
	process.stdout.write(`error: ${e.message}\n`);
	process.exit(1);
});

for (const s of ['SIGTERM', 'SIGINT']) {
	process.on(s, () => {
		process.stdout.write(`summary datagrams=${n.datagrams} `
			+ `parsed=${n.parsed} failed=${n.failed}\n`);
		process.exit(0);
	});
}

sock.bind(Number(listen[2]), listen[1], () => {
	process.stdout.write('pp_backend ready\n');
});
