#!/usr/bin/perl

# Client certificate verification: each dtls_verify_client mode (on,
# optional, optional_no_ca, off) against a valid certificate, none, one
# of another CA, a self-signed one, an expired one, a revoked one
# (dtls_crl), and chains within and beyond dtls_verify_depth, with nginx's
# semantics: the verdict in $dtls_client_verify (SUCCESS, FAILED:reason,
# NONE), also in the access log line of every session of the matrix, a
# refused certificate ending the handshake with an alert and an info line
# naming OpenSSL's error, and the warning of each mode that admits clients
# without a verified certificate (optional, optional_no_ca, with and
# without a client CA, off), once per server at start and at reload, none
# for "on".  The certificate variables, a client
# CA given by dtls_trusted_certificate, PSK and certificate clients of one
# server, an RSA and an ECDSA pair in one server, dtls_password_file,
# a 3-certificate chain each way through a small MTU, SNI, the "nginx -t"
# errors and warnings of certificate servers, and openssl s_client as a
# client we did not write.
#
# The PKI is made at test time (Test::DTLS::PKI), nothing of it is kept.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS qw/ :DEFAULT line_of rx /;
use Test::DTLS::PKI;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, 'dtls_client');

plan(skip_all => 'no openssl binary') unless `openssl version 2>/dev/null`;

my $d = $t->testdir();
my $pki = Test::DTLS::PKI->new("$d/pki");

my $key = hexkey();

psk_file($t, 'psk', "dev-1:$key\n");

# every server answers with the session's variables

my @vars = qw/ dtls_client_verify dtls_client_s_dn dtls_client_i_dn
	dtls_client_serial dtls_client_fingerprint dtls_client_v_end
	dtls_session_id dtls_cipher dtls_psk_identity dtls_server_name
	dtls_protocol /;

my @fields = qw/ verify s_dn i_dn serial fp v_end sid cipher psk sni
	protocol /;

my $return = join '|', map { "\$$_" } @vars;

# the servers: [ port key, directives ]

my %servers = (
	on          => [ 8980, 'dtls_verify_client on;' ],
	optional    => [ 8981, 'dtls_verify_client optional;' ],
	nca         => [ 8982, 'dtls_verify_client optional_no_ca;' ],
	off         => [ 8983, 'dtls_verify_client off;' ],

	on_crl      => [ 8984, 'dtls_crl pki/root.crl;' ],
	optional_crl => [ 8985, 'dtls_verify_client optional; '
		. 'dtls_crl pki/root.crl;' ],
	nca_crl     => [ 8986, 'dtls_verify_client optional_no_ca; '
		. 'dtls_crl pki/root.crl;' ],

	on_d2       => [ 8987, 'dtls_verify_depth 2;' ],
	optional_d2 => [ 8988, 'dtls_verify_client optional; '
		. 'dtls_verify_depth 2;' ],
	nca_d2      => [ 8989, 'dtls_verify_client optional_no_ca; '
		. 'dtls_verify_depth 2;' ],

	on_d0       => [ 8990, 'dtls_verify_depth 0;' ],

	# the client CA as trusted only: not sent in the CertificateRequest

	trusted     => [ 8991, 'dtls_trusted_certificate pki/root.crt;' ],

	# PSK and certificates

	mixed       => [ 8992, 'dtls_psk_file psk;' ],

	# an ECDSA and an RSA pair; an RSA pair only

	dual        => [ 8993, 'dtls_certificate pki/server-ec.crt; '
		. 'dtls_certificate_key pki/server-ec.key; '
		. 'dtls_certificate pki/server-rsa.crt; '
		. 'dtls_certificate_key pki/server-rsa.key;' ],
	rsa         => [ 8994, 'dtls_certificate pki/server-rsa.crt; '
		. 'dtls_certificate_key pki/server-rsa.key;' ],

	# an encrypted key

	password    => [ 8995, 'dtls_certificate pki/server-ec.crt; '
		. 'dtls_certificate_key pki/server-ec.enc.key; '
		. 'dtls_password_file pki/server.pass;' ],

	# a 3-certificate chain each way, through datagrams of 300 bytes

	long        => [ 8996, 'dtls_certificate pki/server-long.crt; '
		. 'dtls_certificate_key pki/server-long.key; '
		. 'dtls_verify_depth 2; dtls_mtu 300;' ],

	# optional_no_ca and no client CA: no certificate can verify

	nca_noca    => [ 8997, 'dtls_verify_client optional_no_ca;' ],

	# PSK and certificates, a certificate optional

	mixed_optional => [ 8998, 'dtls_psk_file psk; '
		. 'dtls_verify_client optional;' ],
);

my $conf = <<'EOF';

events {
}

stream {
    log_format  cert  '$server_port $dtls_client_verify "$dtls_client_s_dn" '
                      '$dtls_cipher $status';

    access_log  %%TESTDIR%%/access.log  cert;

    dtls_certificate         pki/server-ec.crt;
    dtls_certificate_key     pki/server-ec.key;

EOF

for my $name (sort { $servers{$a}[0] <=> $servers{$b}[0] } keys %servers) {
	my ($port, $dirs) = @{$servers{$name}};

	# the client CA of every server but "trusted" (and "off", where
	# it has no use); dtls_certificate of a server replaces those of
	# stream

	$dirs = 'dtls_client_certificate pki/root.crt; ' . $dirs
		unless $name =~ /^(?:trusted|off|nca_noca)$/;

	$dirs =~ s/; /;\n        /g;

	$conf .= <<"EOF";
    # $name

    server {
        listen  127.0.0.1:%%PORT_${port}_UDP%% udp;
        dtls    on;
        $dirs
        return  "$return";
    }

EOF
}

$conf .= "}\n";

$t->write_file_expand('nginx.conf', $conf);
$t->run()->plan(254);

my %port = map { $_ => port($servers{$_}[0], udp => 1) } keys %servers;

###############################################################################

# the modes that admit a client without a verified certificate say so at
# start (and at reload, below), once for each server, naming it as
# FILE:LINE of its "dtls on" and what it admits; "on" says nothing

my %dtls_on;

{
	my ($name, $n) = ('', 0);

	for (split /\n/, $t->read_file('nginx.conf')) {
		$n++;
		$name = $1 if /^\s*# (\S+)$/;
		$dtls_on{$name} = $n if /^\s*dtls\s+on;/;
	}
}

my %admits = (
	off => '"dtls_verify_client off": clients of the server in %s '
		. 'that use certificate suites are asked for no certificate '
		. 'and admitted unauthenticated ($dtls_client_verify is NONE)',
	optional => '"dtls_verify_client optional": clients of the server '
		. 'in %s that use certificate suites and send no certificate '
		. 'are admitted unauthenticated ($dtls_client_verify is NONE)',
	nca => '"dtls_verify_client optional_no_ca": clients of the server '
		. 'in %s that use certificate suites and send no certificate, '
		. 'or one whose issuer is not trusted (self-signed, unknown '
		. 'CA), are admitted unauthenticated ($dtls_client_verify is '
		. 'NONE or FAILED:reason)',
	nca_noca => '"dtls_verify_client optional_no_ca" with no '
		. '"dtls_client_certificate" or "dtls_trusted_certificate": '
		. 'clients of the server in %s that use certificate suites are '
		. 'admitted unauthenticated with any certificate within its '
		. 'validity dates, or none, as no CA can verify one '
		. '($dtls_client_verify is NONE or FAILED:reason)',
);

warnings(error_log($t), 'start');

###############################################################################

# the verification matrix: for each mode, each client, where it goes and
# what comes of it: [ client, server suffix, expected ] where expected is
# a hash: verify => regex of $dtls_client_verify and i_dn, or refused =>
# [ log error regex, alert the client receives ]

my %client_cn = (
	'client' => 'client-1', 'client-int' => 'client-int',
	'client-long' => 'client-long', 'client-other' => 'client-other',
	'client-self' => 'client-self', 'client-expired' => 'client-expired',
	'client-revoked' => 'client-revoked',
);

my $root_dn = 'CN=Test Root CA,O=ngx_dtls test';
my $int_dn = 'CN=Test Intermediate CA,O=ngx_dtls test';
my $int2_dn = 'CN=Test Intermediate 2,O=ngx_dtls test';

my %ok = (
	'client' => { verify => 'SUCCESS', i_dn => $root_dn },
	'client-int' => { verify => 'SUCCESS', i_dn => $int_dn },
	'client-long' => { verify => 'SUCCESS', i_dn => $int2_dn },
);

my %bad = (
	other => { refused => [ qr/20:unable to get local issuer certificate/,
		'unknown CA' ] },
	self => { refused => [ qr/18:self-signed certificate/, 'unknown CA' ] },
	expired => { refused => [ qr/10:certificate has expired/,
		'certificate expired' ] },
	revoked => { refused => [ qr/23:certificate revoked/,
		'certificate revoked' ] },
	long => { refused => [ qr/22:certificate chain too long/,
		'unknown CA' ] },
);

my $none = { verify => 'NONE' };

# nginx's optional_no_ca lets through errors of an unknown issuer only;
# OpenSSL reports the last one of the chain: 20 or 21 for a lone leaf

my $noca = qr/FAILED:(?:unable to get local issuer certificate
	|unable\ to\ verify\ the\ first\ certificate)/x;

for my $mode (qw/ on optional nca /) {

	my @cases = (
		[ 'client', '', $ok{'client'}, 'valid' ],
		[ '', '', $mode eq 'on' ? { refused => 'none' } : $none, 'none' ],
		[ 'client-other', '', $mode eq 'nca'
			? { verify => $noca } : $bad{other}, 'other CA' ],
		[ 'client-self', '', $mode eq 'nca'
			? { verify => qr/FAILED:self-signed certificate/ }
			: $bad{self}, 'self-signed' ],
		[ 'client-expired', '', $bad{expired}, 'expired' ],
		[ 'client', '_crl', $ok{'client'}, 'valid, crl' ],
		[ 'client-revoked', '_crl', $bad{revoked}, 'revoked' ],

		# OpenSSL 1.1.0+: a depth of N allows N intermediate CAs
		# between the client's certificate and the trust anchor

		[ 'client-int', '', $ok{'client-int'}, 'one intermediate, depth 1' ],
		[ 'client-long', '', $bad{long}, 'two intermediates, depth 1' ],
		[ 'client-long', '_d2', $ok{'client-long'},
			'two intermediates, depth 2' ],
	);

	for my $case (@cases) {
		my ($client, $suffix, $expect, $what) = @$case;
		check("$mode$suffix", $client, $expect, "$mode: $what");
	}
}

check('on_d0', 'client', $ok{'client'}, 'on: valid, depth 0');
check('on_d0', 'client-int', $bad{long}, 'on: one intermediate, depth 0');

# off: no certificate is asked for, whatever the client has

for my $client (qw/ client client-other client-expired client-revoked
	client-self client-long /, '')
{
	my $mark = access_mark($t);
	my $r = session('off', $client);
	my $name = "off: " . ($client || 'none');

	is($r->{verify}, 'NONE', "$name: NONE") or diag($r->{out});
	logged('off', $mark, 'NONE', $name);
}

# optional_no_ca and no client CA: every certificate within its dates is
# let through unverified, and says so (dtls_client sends the root it
# trusts after client-1's certificate: 19, a self-signed one in the chain)

check('nca_noca', 'client',
	{ verify => qr/FAILED:self-signed certificate in certificate chain/ },
	'nca, no CA: valid');
check('nca_noca', '', $none, 'nca, no CA: none');
check('nca_noca', 'client-other', { verify => $noca },
	'nca, no CA: other CA');
check('nca_noca', 'client-self',
	{ verify => qr/FAILED:self-signed certificate/ },
	'nca, no CA: self-signed');
check('nca_noca', 'client-expired', $bad{expired}, 'nca, no CA: expired');

# PSK and an optional certificate: both a PSK client (authenticated by its
# key) and a certificate-suite client without a certificate are NONE;
# only the latter has no $dtls_psk_identity

my $mark = access_mark($t);
my $r = session('mixed_optional', '', '-k', $key, '-i', 'dev-1');
is(join('|', map { $_ // '(none)' } @$r{qw/ verify psk /}), 'NONE|dev-1',
	'mixed, optional: PSK client: NONE, identity');
logged('mixed_optional', $mark, 'NONE', 'mixed, optional: PSK client');

$mark = access_mark($t);
$r = session('mixed_optional', '');
is(join('|', map { $_ // '(none)' } @$r{qw/ verify psk /}), 'NONE|',
	'mixed, optional: no certificate: NONE, no identity');
like($r->{cipher} // '', qr/^ECDHE-ECDSA-/,
	'mixed, optional: no certificate: certificate suite');
logged('mixed_optional', $mark, 'NONE', 'mixed, optional: no certificate');

check('mixed_optional', 'client', $ok{'client'}, 'mixed, optional: valid');
check('mixed_optional', 'client-other', $bad{other},
	'mixed, optional: other CA');

$r = session('off', 'client');
is($r->{s_dn}, '', 'off: no client subject');

# the variables of a verified certificate

my $info = $pki->info('client');

$r = session('on', 'client');
is($r->{s_dn}, 'CN=client-1,O=ngx_dtls test', '$dtls_client_s_dn');
is($r->{i_dn}, $root_dn, '$dtls_client_i_dn');
is($r->{serial}, $info->{serial}, '$dtls_client_serial');
like($r->{fp}, qr/^[0-9a-f]{40}$/, '$dtls_client_fingerprint format');
is($r->{fp}, $info->{fingerprint}, '$dtls_client_fingerprint');
is($r->{v_end}, $info->{not_after}, '$dtls_client_v_end');
like($r->{cipher}, qr/^ECDHE-ECDSA-/, '$dtls_cipher: ECDHE-ECDSA');
is($r->{protocol}, 'DTLSv1.2', '$dtls_protocol');
is($r->{psk}, '', '$dtls_psk_identity empty');

# with a session ticket (dtls_client asks for one), OpenSSL sends no
# session ID, as for nginx's $ssl_session_id; s_client below without

like($r->{sid}, qr/^(?:[0-9a-f]{64})?$/, '$dtls_session_id format');

like($r->{out}, rx(qr/^server certificate /,
		qr/subject=CN=server-ec,O=ngx_dtls test /,
		qr/issuer=\Q$int_dn\E verify=ok$/), 'server chain verified by client');

# dtls_trusted_certificate only

$r = session('trusted', 'client');
is($r->{verify}, 'SUCCESS', 'trusted: valid');

$r = refused('trusted', 'client-other', $bad{other}{refused},
	'trusted: other CA');

$r = refused('trusted', '', 'none', 'trusted: none');

# PSK and certificate clients of one server

$r = session('mixed', '', '-k', $key, '-i', 'dev-1');
like($r->{cipher}, qr/^(?:ECDHE-)?PSK-/, 'mixed: PSK client, PSK suite');
is($r->{psk}, 'dev-1', 'mixed: PSK client, $dtls_psk_identity');
is($r->{verify}, 'NONE', 'mixed: PSK client, NONE');
unlike($r->{out}, qr/^server certificate/m,
	'mixed: PSK client, no server certificate');

$r = session('mixed', 'client');
like($r->{cipher}, qr/^ECDHE-ECDSA-/, 'mixed: certificate client, suite');
is($r->{verify}, 'SUCCESS', 'mixed: certificate client, SUCCESS');
is($r->{psk}, '', 'mixed: certificate client, no PSK identity');

$r = session('mixed', 'client', '-k', $key, '-i', 'dev-1');
like($r->{cipher}, qr/PSK/, 'mixed: both offered, the client prefers PSK');

refused('mixed', '', 'none', 'mixed: certificate suites, no certificate');
refused('mixed', 'client-expired', $bad{expired}{refused},
	'mixed: expired');

# an ECDSA and an RSA pair: the suite decides

$r = session('dual', 'client', '-C', 'ECDHE-RSA-AES128-GCM-SHA256');
is($r->{cipher}, 'ECDHE-RSA-AES128-GCM-SHA256', 'dual: RSA suite');
like($r->{out}, rx(qr/^server certificate /,
		qr/subject=CN=server-rsa,O=ngx_dtls test /,
		qr/issuer=\Q$int_dn\E verify=ok$/m), 'dual: RSA certificate');
is($r->{verify}, 'SUCCESS', 'dual: RSA suite, client verified');

$r = session('dual', 'client', '-C', 'ECDHE-ECDSA-AES128-GCM-SHA256');
is($r->{cipher}, 'ECDHE-ECDSA-AES128-GCM-SHA256', 'dual: ECDSA suite');
like($r->{out}, qr/^server certificate subject=CN=server-ec,/m,
	'dual: ECDSA certificate');

$r = session('rsa', 'client', '-C', 'ECDHE-RSA-CHACHA20-POLY1305');
like($r->{out}, qr/^server certificate subject=CN=server-rsa,.* verify=ok$/m,
	'rsa: RSA certificate');

$mark = log_mark($t);
$r = session('rsa', 'client', '-C', 'ECDHE-ECDSA-AES128-GCM-SHA256');
ok(!defined $r->{verify} && $r->{out} =~ /^handshake failed: /m,
	'rsa: ECDSA suites only, refused');
ok(wait_log($t, qr/DTLS handshake failed: no shared cipher/, 3, $mark),
	'rsa: no shared cipher logged');

# dtls_password_file

$r = session('password', 'client');
is($r->{verify}, 'SUCCESS', 'password file: encrypted key');
like($r->{out}, qr/^server certificate subject=CN=server-ec,.* verify=ok$/m,
	'password file: server verified');

# 3-certificate chains both ways through 300-byte datagrams

$r = session('long', 'client-long', '-M', 300, '-A', $pki->path('root.crt'));
is($r->{verify}, 'SUCCESS', 'long chains, small MTU: client verified');
is($r->{i_dn}, $int2_dn, 'long chains, small MTU: issuer');
like($r->{out}, rx(qr/^server certificate /,
		qr/subject=CN=server-long,O=ngx_dtls test /,
		qr/issuer=\Q$int2_dn\E verify=ok$/m),
	'long chains, small MTU: server verified');

# SNI

$r = session('on', 'client', '-S', 'dtls.example');
is($r->{sni}, 'dtls.example', '$dtls_server_name');

$r = session('on', 'client');
is($r->{sni}, '', '$dtls_server_name without SNI');

# a client verifying the server against another CA

$r = session('on', 'client', '-A', $pki->path('other.crt'));
like($r->{out}, qr/^handshake failed: certificate verify failed$/m,
	'client refuses a server of another CA');

###############################################################################

# openssl s_client

my @ca = ('-CAfile', $pki->path('root.crt'));

my $out = s_client('on', cert('client'), @ca, '-no_ticket');
like($out, qr/^SUCCESS\|CN=client-1,/m, 's_client: valid, SUCCESS');
like($out, qr/Verify return code: 0 \(ok\)/, 's_client: server verified');
like($out, rx(qr/^Acceptable client certificate CA names\n/m,
		qr/^O = ngx_dtls test, CN = Test Root CA$/), 's_client: CA names sent');
like($out, qr/^Client Certificate Types: /m, 's_client: certificate request');

my ($sid) = $out =~ /^\s+Session-ID: ([0-9A-F]{64})$/m;
my ($vsid) = $out =~ /^SUCCESS(?:\|[^|\n]*){5}\|([^|\n]*)\|/m;
ok(defined $sid && defined $vsid && $vsid eq lc $sid,
	's_client: $dtls_session_id is the session ID')
	or diag($out);

$mark = log_mark($t);
$out = s_client('on', cert('client-expired'), @ca);
unlike($out, qr/SUCCESS/, 's_client: expired, no data');
like($out, qr/alert certificate expired/, 's_client: expired, alert');
ok(wait_log($t, rx(qr/DTLS client certificate verify error: /,
		qr/\(10:certificate has expired\), depth 0, /,
		qr{subject "/O=ngx_dtls test/CN=client-expired"}), 3, $mark),
	's_client: expired, logged');

$out = s_client('on', @ca);
unlike($out, qr/SUCCESS/, 's_client: none, no data');
like($out, qr/alert handshake failure/, 's_client: none, alert');

$out = s_client('nca', cert('client-other'), @ca);
like($out, qr/^$noca\|CN=client-other,/m, 's_client: optional_no_ca');

$out = s_client('trusted', cert('client'), @ca);
like($out, qr/^SUCCESS\|/m, 's_client: trusted only, SUCCESS');
like($out, qr/^No client certificate CA names sent$/m,
	's_client: trusted only, no CA names sent');

$out = s_client('off', cert('client'), @ca);
like($out, qr/^NONE\|/m, 's_client: off, NONE');
unlike($out, qr/Client Certificate Types/,
	's_client: off, no certificate request');

$out = s_client('long', cert('client-long'), @ca, '-mtu', 300,
	'-cert_chain', $pki->path('client-long.crt'));
like($out, qr/^SUCCESS\|CN=client-long,/m, 's_client: long chains, MTU 300');

###############################################################################

# a reload says it all again

$mark = log_mark($t);
ok(reload_wait($t), 'reload');
warnings(error_log($t, $mark), 'reload');

###############################################################################

# the access log, and the error log (before "nginx -t" adds to it)

$t->stop();

my $log = $t->read_file('access.log');

like($log, rx(qr/^$port{on} SUCCESS "CN=client-1,O=ngx_dtls test" /,
		qr/ECDHE-ECDSA-\S+ 200$/m), 'access log: SUCCESS');
like($log, qr/^$port{nca} $noca "CN=client-other,O=ngx_dtls test" \S+ 200$/m,
	'access log: optional_no_ca, FAILED');

# an empty variable is logged as "-", as nginx's $ssl_client_s_dn is

like($log, qr/^$port{optional} NONE "-" \S+ 200$/m, 'access log: NONE');
like($log, qr/^$port{on} - "-" - 400$/m, 'access log: refused');

is(log_alerts($t), '', 'no alerts in the error log');

###############################################################################

# nginx -t: the warning of "off", a missing client CA, a missing key, a
# missing password

my ($rc, $test) = conf_test('warn.conf', <<'EOF');
dtls_certificate      pki/server-ec.crt;
dtls_certificate_key  pki/server-ec.key;
dtls_verify_client    off;
EOF

is($rc, 0, 'nginx -t: off passes');
my $line = line_of($t, 'warn.conf', qr/^\s*dtls\s+on;/);
my $warn = sprintf($admits{off}, "$d/warn.conf:$line");
like($test, qr/\[warn\] \Q$warn\E$/m, 'nginx -t: off warns, naming the server');

for my $mode ('', 'dtls_verify_client optional;') {
	($rc, $test) = conf_test('noca.conf', <<"EOF");
dtls_certificate      pki/server-ec.crt;
dtls_certificate_key  pki/server-ec.key;
$mode
EOF

	my $m = $mode ? 'optional' : 'default';
	$line = line_of($t, 'noca.conf', qr/^\s*dtls\s+on;/);

	isnt($rc, 0, "nginx -t: $m, no client CA fails");
	like($test, rx(qr/\[emerg\].*no "dtls_client_certificate" /,
		qr/is defined for /,
		qr/the server with "dtls_certificate" in /,
		qr/\Q$d\E\/noca\.conf:$line, which verifies clients by default: /,
		qr/set dtls_client_certificate, or dtls_verify_client off to /,
		qr/accept unauthenticated clients/),
		"nginx -t: $m, no client CA, message");
}

($rc, $test) = conf_test('nca.conf', <<'EOF');
dtls_certificate      pki/server-ec.crt;
dtls_certificate_key  pki/server-ec.key;
dtls_verify_client    optional_no_ca;
EOF

is($rc, 0, 'nginx -t: optional_no_ca needs no client CA');
$line = line_of($t, 'nca.conf', qr/^\s*dtls\s+on;/);
$warn = sprintf($admits{nca_noca}, "$d/nca.conf:$line");
like($test, qr/\[warn\] \Q$warn\E$/m,
	'nginx -t: optional_no_ca, no client CA, warns');

($rc, $test) = conf_test('trusted.conf', <<'EOF');
dtls_certificate          pki/server-ec.crt;
dtls_certificate_key      pki/server-ec.key;
dtls_trusted_certificate  pki/root.crt;
EOF

is($rc, 0, 'nginx -t: dtls_trusted_certificate is a client CA');

($rc, $test) = conf_test('nokey.conf', <<'EOF');
dtls_certificate         pki/server-ec.crt;
dtls_client_certificate  pki/root.crt;
EOF

isnt($rc, 0, 'nginx -t: no key fails');
like($test, rx(qr/no "dtls_certificate_key" is defined for certificate /,
		qr/"pki\/server-ec\.crt"/), 'nginx -t: no key, message');

($rc, $test) = conf_test('nopass.conf', <<'EOF');
dtls_certificate         pki/server-ec.crt;
dtls_certificate_key     pki/server-ec.enc.key;
dtls_client_certificate  pki/root.crt;
EOF

isnt($rc, 0, 'nginx -t: encrypted key without a password fails');
like($test, qr/\[emerg\].*server-ec\.enc\.key/,
	'nginx -t: encrypted key without a password, names the key');

###############################################################################

###############################################################################

# the arguments of dtls_client for a client's certificate and key

sub cert {
	my ($name) = @_;

	return () unless $name;
	return ('-a', $pki->path("$name.crt"), '-K', $pki->path("$name.key"));
}

# a session of dtls_client with a server of the test: the output, the
# exit code, and the variables the server returned (undef when none)

sub session {
	my ($server, $client, @args) = @_;

	# the server is verified against the root unless told otherwise

	unshift @args, '-A', $pki->path('root.crt')
		unless grep { $_ eq '-A' || $_ eq '-k' } @args;

	my ($out, $rc) = dtls_client($t, { timeout => 10 },
		'-c', "127.0.0.1:$port{$server}", '-m', 'send-only', '-s', 'x',
		'-t', 3000, cert($client), @args);

	my %r = (out => $out, rc => $rc);

	if ($out =~ /^recv (.*)$/m) {
		@r{@fields} = split /\|/, $1, -1;
	}

	return \%r;
}

# a client refused: with an alert on its side, a line naming the error
# on nginx's; "none" is for the client without a certificate

sub refused {
	my ($server, $client, $refused, $name) = @_;

	my $mark = log_mark($t);
	my $r = session($server, $client);

	my ($log, $alert) = ref $refused ? @$refused
		: (undef, 'handshake failure');

	ok(!defined $r->{verify} && $r->{rc} == 1
		&& $r->{out} =~ /^alert received: \Q$alert\E$/m
		&& $r->{out} =~ /^handshake failed: /m,
		"$name: refused, alert \"$alert\"") or diag($r->{out});

	if (!defined $log) {
		ok(wait_log($t, rx(qr/DTLS handshake failed: /,
		qr/client sent no required certificate/), 3, $mark),
			"$name: logged") or diag(error_log($t, $mark));
		return $r;
	}

	my $cn = $client_cn{$client};
	my $ok = wait_log($t, rx(qr/DTLS handshake failed: /,
		qr/client certificate verify error/), 3, $mark);

	ok($ok && error_log($t, $mark) =~ /\[info\].* DTLS client certificate /
		. qr/verify error: \($log\), depth \d, subject "[^"]*"/,
		"$name: logged") or diag(error_log($t, $mark));

	return $r;
}

# a cell of the matrix: admitted with the verdict and subject expected,
# or refused; either way the access log line says so

sub check {
	my ($server, $client, $expect, $name) = @_;

	my $mark = access_mark($t);

	if ($expect->{refused}) {
		refused($server, $client, $expect->{refused}, $name);
		logged($server, $mark, '-', $name);
		return;
	}

	my $r = session($server, $client);
	my $v = $expect->{verify};

	if (!defined $r->{verify}) {
		fail("$name: $v");
		diag($r->{out});
		fail("$name: subject");
		fail("$name: access log");
		return;
	}

	ref $v ? like($r->{verify}, qr/^$v$/, "$name: $r->{verify}")
		: is($r->{verify}, $v, "$name: $v");

	logged($server, $mark, $r->{verify}, $name);

	if (!$client) {
		is($r->{s_dn}, '', "$name: no subject");
		return;
	}

	my $dn = "CN=$client_cn{$client},O=ngx_dtls test";

	is(join('|', $r->{s_dn}, $expect->{i_dn} ? $r->{i_dn} : ()),
		join('|', $dn, $expect->{i_dn} || ()), "$name: subject");
}

# the session's line in the access log, written after the mark: its
# $dtls_client_verify, "-" (and status 400) for a refused session

sub logged {
	my ($server, $mark, $verify, $name) = @_;

	my ($line) = wait_access($t, 1, 3, $mark);
	my $status = $verify eq '-' ? 400 : 200;

	like($line // '', qr/^$port{$server} \Q$verify\E "[^"]*" \S+ $status$/,
		"$name: access log: $verify");
}

# the [warn] lines of a start or a reload that name each server: the one
# of its mode, or none

sub warnings {
	my ($log, $when) = @_;

	my @warn = grep { /\[warn\]/ } split /\n/, $log;

	for my $name (sort keys %servers) {
		my $mode = $name =~ /^off/ ? 'off'
			: $name =~ /^(?:optional|mixed_optional)/ ? 'optional'
			: $name eq 'nca_noca' ? 'nca_noca'
			: $name =~ /^nca/ ? 'nca' : undef;

		my $at = "$d/nginx.conf:$dtls_on{$name}";
		my @w = map { s/^.*?\[warn\] \S+ //r }
			grep { / in \Q$at\E / } @warn;

		is_deeply(\@w, $mode ? [ sprintf($admits{$mode}, $at) ] : [],
			"$when: $name: " . ($mode || 'no') . ' warning')
			or diag(join "\n", @w);
	}
}

# openssl s_client: waits a second for what the server returns

sub s_client {
	my ($server, @args) = @_;

	s/^-a$/-cert/, s/^-K$/-key/ for @args;

	my ($out) = run_tool($t, { stderr => 1, timeout => 15 }, '/bin/sh',
		'-c', 'sleep 1 | exec timeout 10 openssl s_client -dtls1_2 '
		. '-connect "$0" "$@"', "127.0.0.1:$port{$server}", @args);

	return $out;
}

# nginx -t of a configuration with one certificate server

sub conf_test {
	my ($name, $dirs) = @_;

	$dirs =~ s/^/        /mg;

	$t->write_file_expand($name, <<"EOF");
%%TEST_GLOBALS%%
events {
}

stream {
    server {
        listen  127.0.0.1:%%PORT_8999_UDP%% udp;
        dtls    on;
$dirs
        return  ok;
    }
}
EOF

	return test_config($t, $name);
}

# a regex made of pieces, to keep lines short: multi-line, each piece's
# own flags dropped



###############################################################################
