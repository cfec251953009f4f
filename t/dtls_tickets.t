#!/usr/bin/perl

# Session tickets: without a key file a ticket resumes across reloads of
# one instance; with dtls_session_ticket_key files it resumes on another
# instance that reads the same files, and across a rotation (the first
# key encrypts, every one decrypts, a ticket of an older key is renewed
# under the first); dtls_session_tickets off sends none, and resumption
# falls back to the worker's session cache.  Key files are checked at
# nginx -t, and no key is logged.  The client is OpenSSL's s_client, which
# saves the session with its ticket (-sess_out) and offers it (-sess_in).

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::PKI;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp debug/)->has_module('dtls');

my ($openssl) = grep { -x } map { "$_/openssl" } split /:/, $ENV{PATH};
plan(skip_all => 'no openssl') unless $openssl
	&& `$openssl version 2>&1` =~ /^OpenSSL 3/;

my $d = $t->testdir();
my $key = unpack('H*', join '', map { chr int rand 256 } 1 .. 16);

sub random { join '', map { chr int rand 256 } 1 .. $_[0] }

$t->write_file('psk', "dev-1:$key\n");

my %tk = (k1 => random(80), k2 => random(80), k3 => random(48),
	other => random(80));

$t->write_file($_, $tk{$_}) for keys %tk;
chmod 0600, map { "$d/$_" } 'psk', keys %tk;

my $pki = Test::DTLS::PKI->new("$d/pki");
my @cert = ('-cert', $pki->path('client.crt'), '-key', $pki->path('client.key'),
	'-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256');

sub conf {
	my ($directives) = @_;

	$t->write_file_expand('nginx.conf', <<"EOF");

events {
}

stream {
    log_format  dtls  '\$dtls_session_reused \$dtls_cipher';

    access_log  %%TESTDIR%%/access.log  dtls;

    server {
        listen                   127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                     on;
        dtls_psk_file            psk;
        dtls_certificate         ${\ $pki->path('server-ec.crt') };
        dtls_certificate_key     ${\ $pki->path('server-ec.key') };
        dtls_client_certificate  ${\ $pki->path('root.crt') };
        $directives
        proxy_pass               127.0.0.1:%%PORT_8981_UDP%%;
    }
}

EOF
}

my $port = port(8980, udp => 1);

# one s_client session; returns "New", "Reused" or the output when neither

sub s_client {
	my ($sess_in, $sess_out, @args) = @_;

	@args = ('-psk_identity', 'dev-1', '-psk', $key,
		'-cipher', 'PSK-AES128-GCM-SHA256') unless @args;

	unlink "$d/$sess_out" if $sess_out;

	my ($out) = run_tool($t, { stderr => 1, timeout => 10 }, $openssl,
		's_client', '-dtls1_2', '-connect', "127.0.0.1:$port",
		$sess_in ? ('-sess_in', "$d/$sess_in") : (),
		$sess_out ? ('-sess_out', "$d/$sess_out") : (), @args);

	return $out if $out =~ /alert|handshake failure/;
	return $1 if $out =~ /^(New|Reused), /m;
	return $out;
}

sub ticket_of {
	my ($sess) = @_;
	return `$openssl sess_id -in $d/$sess -noout -text 2>&1`
		=~ /TLS session ticket:\n\s*0000 -/ ? 1 : 0;
}

sub restart {
	$t->stop();
	$t->run();
}

# the backend, of an object of its own: $t->stop() stops its daemons

my $backend = Test::Nginx->new();
udp_echo($backend, '127.0.0.1:' . port(8981, udp => 1));

$t->plan(36);

###############################################################################

# without a key file: a ticket of the random key resumes after reloads,
# in workers that have no session cache of the first

conf('');
$t->run();

is(s_client(undef, 's1'), 'New', 'random key: full handshake');
ok(ticket_of('s1'), 'random key: ticket issued');
is(s_client('s1'), 'Reused', 'random key: resumed');

ok(reload_done($t), 'reload');
is(s_client('s1'), 'Reused', 'random key: resumed after a reload');

ok(reload_done($t), 'second reload');
is(s_client('s1'), 'Reused', 'random key: resumed after a second reload');

# a restart draws another key

restart();
is(s_client('s1'), 'New', 'random key: not after a restart');

# certificate sessions too (dtls_client's certificate and the test CA)

is(s_client(undef, 'c1', @cert), 'New', 'certificate: full handshake');
ok(reload_done($t), 'reload, certificate');
is(s_client('c1', undef, @cert), 'Reused',
	'certificate: resumed after a reload');

# many: dtls_load's certificate sessions each resume the first (-r)

my ($load) = run_tool($t, { timeout => 30 }, 'dtls_load', '-c',
	"127.0.0.1:$port", '-m', 'handshake', '-n', 4, '-d', 1, '-w', 0.2,
	'-r', '-a', $pki->path('client.crt'), '-K', $pki->path('client.key'));
like($load, qr/"cipher":"ECDHE-ECDSA-AES128-GCM-SHA256"/,
	'dtls_load -a: certificate suite');
my ($hs, $res) = $load =~ /"handshakes":(\d+),.*"resumed":(\d+)/;
ok($hs && $res && $res >= $hs - 4, 'dtls_load -r: resumed')
	or diag($load);
like($load, qr/"failures":0,/, 'dtls_load: no failure');

###############################################################################

# key files: a ticket outlives a restart, and rotates

conf("dtls_session_ticket_key k1;\n        dtls_session_ticket_key k2;");
restart();

is(s_client(undef, 'f1'), 'New', 'key file: full handshake');
restart();
is(s_client('f1'), 'Reused', 'key file: resumed after a restart');

# k3 (48 bytes) in front: k1's ticket still resumes, and comes back
# renewed under k3

my $mark = log_mark($t);

conf("dtls_session_ticket_key k3;\n        dtls_session_ticket_key k1;");
ok(reload_done($t), 'reload to a new first key');

is(s_client('f1'), 'Reused', 'rotation: old ticket resumed');
my $k3 = unpack('H*', substr($tk{k3}, 0, 16));
my $k1 = unpack('H*', substr($tk{k1}, 0, 16));
ok(wait_log($t, qr/ticket decrypt, key: "$k1"\n.*ticket encrypt, key: "$k3"/s,
	3, $mark), 'rotation: renewed under the new first key');

# (s_client does not save a ticket renewed on a resumption: a new one)

is(s_client(undef, 'f3'), 'New', 'rotation: full handshake under the new key');

conf('dtls_session_ticket_key k3;');
ok(reload_done($t), 'reload, old key retired');

is(s_client('f3'), 'Reused', 'rotation: ticket of the new key resumed');
is(s_client('f1'), 'New', 'rotation: ticket of the retired key refused');

# another instance with another key

conf('dtls_session_ticket_key other;');
restart();
is(s_client('f3'), 'New', 'another key: full handshake');

# no key is logged, at debug level either

my $log = error_log($t);
my $leaked = join ' ', grep {
	my $k = $tk{$_};
	my @parts = length $k == 80 ? (substr($k, 16, 32), substr($k, 48, 32))
		: (substr($k, 16, 16), substr($k, 32, 16));
	grep { index($log, unpack('H*', $_)) >= 0
		|| index($log, $_) >= 0 } @parts;
} keys %tk;
is($leaked, '', 'no ticket key in the error log');

###############################################################################

# tickets off: none issued, resumption by session ID in the worker's cache,
# which a reload empties

conf('dtls_session_tickets off;');
restart();

is(s_client(undef, 'n1'), 'New', 'tickets off: full handshake');
ok(!ticket_of('n1'), 'tickets off: no ticket');
is(s_client('n1'), 'Reused', 'tickets off: resumed from the session cache');
ok(reload_done($t), 'tickets off: reload');
is(s_client('n1'), 'New', 'tickets off: not after a reload');

$t->stop();

is(log_alerts($t), '', 'no alerts');

###############################################################################

# nginx -t: the size, the file, its permissions, a key twice

$t->write_file('k47', random(47));
chmod 0600, "$d/k47";

conf('dtls_session_ticket_key k47;');
my ($rc, $out) = test_config($t);
isnt($rc, 0, 'key of 47 bytes: fails');
like($out, qr/\[emerg\] session ticket key file "\S+\/k47" has 47 bytes, 48 or 80 are needed \("openssl rand 80"\) in \S+nginx\.conf:\d+/,
	'key of 47 bytes: file, line and reason');

conf('dtls_session_ticket_key missing;');
($rc, $out) = test_config($t);
like($out, qr/\[emerg\] cannot open session ticket key file "\S+\/missing" \(2: No such file or directory\) in \S+nginx\.conf:\d+/,
	'missing key file');

chmod 0644, "$d/k2";
conf('dtls_session_ticket_key k2;');
($rc, $out) = test_config($t);
like($out, qr/\[warn\] session ticket key file "\S+\/k2" is readable by others, keep it to its owner \(chmod 600\) in \S+nginx\.conf:\d+/,
	'key file readable by others: warning');

conf("dtls_session_ticket_key k1;\n        dtls_session_ticket_key k1;");
($rc, $out) = test_config($t);
like($out, qr/\[emerg\] session ticket key file "\S+\/k1" has the key name of an earlier one, a copy of it\? in \S+nginx\.conf:\d+/,
	'key twice');

###############################################################################
