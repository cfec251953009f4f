#!/usr/bin/perl

# Tests of the dtls configuration: every error and warning of "nginx -t"
# (listen checks, dtls_mtu, a missing dtls_psk_file, each PSK file problem,
# PSK file permissions), valid PSK file edge cases, keys never shown in
# the output, and a reload that re-reads the PSK file.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

$t->tool('dtls_client');

my $d = $t->testdir();
my $p = port(8980, udp => 1);
my $ptcp = port(8981);

# random keys, never committed: hex of N bytes

sub hexkey {
	my ($n) = @_;
	return join '', map { sprintf '%02x', int rand 256 } 1 .. $n;
}

# a PSK file of the test directory, mode 0600 unless told

sub psk_file {
	my ($name, $content, $mode) = @_;

	$t->write_file($name, $content);
	chmod(defined $mode ? $mode : 0600, "$d/$name")
		or die "chmod $name: $!\n";
}

# a regex made of pieces, to keep lines short

sub rx {
	my $s = join '', @_;
	return qr/$s/;
}

# the line number of the first line of a test file matching a regex

sub line_of {
	my ($name, $re) = @_;

	my @lines = split /\n/, $t->read_file($name);
	my ($n) = grep { $lines[$_ - 1] =~ $re } 1 .. @lines;

	die "no $re in $name\n" unless $n;
	return $n;
}

# a configuration with one udp dtls server using a PSK file

sub dtls_conf {
	my ($name, $psk) = @_;

	$t->write_file_expand($name, <<"EOF");
%%TEST_GLOBALS%%
events {
}

stream {
    server {
        listen         127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls           on;
        dtls_psk_file  $psk;
        return         ok;
    }
}
EOF
}

# the PSK file cases that fail: [ name, content, reason ]

my $k16 = hexkey(16);
my $k32 = hexkey(32);

my @bad = (
	[ 'short', "dev:" . hexkey(15) . "\n",
		qr/line 1: key must be 16 to 64 bytes \(32 to 128 hex digits\)/ ],
	[ 'long', "dev:" . hexkey(65) . "\n",
		qr/line 1: key must be 16 to 64 bytes \(32 to 128 hex digits\)/ ],
	[ 'odd', "dev:" . hexkey(16) . "a\n",
		qr/line 1: key must be an even number of hex digits/ ],
	[ 'nonhex', "dev:" . substr(hexkey(16), 0, 30) . "zz\n",
		qr/line 1: key is not hexadecimal/ ],
	[ 'nocolon', "# keys\ndev" . hexkey(16) . "\n",
		qr/line 2: expected "identity:hexkey"/ ],
	[ 'noident', ":" . hexkey(16) . "\n",
		qr/line 1: identity must be 1 to 128 bytes/ ],
	[ 'longident', ('i' x 129) . ":" . hexkey(16) . "\n",
		qr/line 1: identity must be 1 to 128 bytes/ ],
	[ 'unprintable', "de\x01v:" . hexkey(16) . "\n",
		qr/line 1: identity must be printable ASCII/ ],
	[ 'duplicate', "a:$k16\nb:" . hexkey(16) . "\na:$k32\n",
		qr/line 3: duplicate identity "a", first at line 1/ ],
);

# the PSK file cases that pass: [ name, content ]

my @good = (
	[ 'colons', "urn:dev:1:" . hexkey(16) . "\n" ],
	[ 'crlf', "# comment\r\na:" . hexkey(16) . "\r\n\r\nb:"
		. hexkey(20) . "\r\n" ],
	[ 'spaces', "  a:" . hexkey(16) . "  \n   b:" . hexkey(16) . " \n" ],
	[ 'comments', "# identity:hexkey\n\n# another\na:" . hexkey(16)
		. "\n\n" ],
	[ 'min', "a:" . hexkey(16) . "\n" ],
	[ 'max', "a:" . hexkey(64) . "\n" ],
	[ 'upper', "a:" . uc(hexkey(32)) . "\n" ],
);

# every 16 hex digits long piece of the keys of a PSK file

sub key_pieces {
	my ($content) = @_;

	my @pieces;

	for my $key ($content =~ /([0-9a-fA-F]{16,})/g) {
		push @pieces, map { substr($key, $_, 16) } 0 .. length($key) - 16;
	}

	return @pieces;
}

$t->plan(18 + 5 + 4 * @bad + 7 + @good + 5 + 12);

###############################################################################

# dtls on a TCP listen

psk_file('ok.psk', "dev:" . hexkey(16) . "\n");

$t->write_file_expand('tcp.conf', <<'EOF');
%%TEST_GLOBALS%%
events {
}

stream {
    server {
        listen         127.0.0.1:%%PORT_8981%%;
        dtls           on;
        dtls_psk_file  ok.psk;
        return         ok;
    }
}
EOF

my ($rc, $out) = $t->test_config('tcp.conf');
isnt($rc, 0, 'tcp listen: fails');
my $line = line_of('tcp.conf', qr/dtls\s+on/);
like($out, rx(qr/"dtls" needs "listen \.\.\. udp", but "listen 127\.0\.0\.1:$ptcp"/,
	   qr/ is not udp, in \Q$d\E\/tcp\.conf:$line\b/),
	'tcp listen: message, file and line');

# two workers need reuseport, which then passes

$t->write_file_expand('workers.conf', <<'EOF');
%%TEST_GLOBALS%%
worker_processes  2;

events {
}

stream {
    server {
        listen         127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls           on;
        dtls_psk_file  ok.psk;
        return         ok;
    }
}
EOF

($rc, $out) = $t->test_config('workers.conf');
isnt($rc, 0, 'workers without reuseport: fails');
$line = line_of('workers.conf', qr/dtls\s+on/);
like($out, rx(qr/"dtls" with 2 worker processes needs/,
	   qr/ "listen 127\.0\.0\.1:$p udp reuseport", so that every datagram/,
	   qr/ of a client reaches one worker, in \Q$d\E\/workers\.conf:$line\b/),
	'workers without reuseport: message, file and line');

$t->write_file_expand('reuseport.conf', <<'EOF');
%%TEST_GLOBALS%%
worker_processes  2;

events {
}

stream {
    server {
        listen         127.0.0.1:%%PORT_8980_UDP%% udp reuseport;
        dtls           on;
        dtls_psk_file  ok.psk;
        return         ok;
    }
}
EOF

($rc, $out) = $t->test_config('reuseport.conf');
is($rc, 0, 'workers with reuseport: passes');
unlike($out, qr/\[(emerg|warn)\]/, 'workers with reuseport: no complaint');

# the same, with worker_processes written after the stream block: the
# check sees the final value

$t->write_file_expand('workers-after.conf', <<'EOF');
%%TEST_GLOBALS%%
events {
}

stream {
    server {
        listen         127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls           on;
        dtls_psk_file  ok.psk;
        return         ok;
    }
}

worker_processes  4;
EOF

($rc, $out) = $t->test_config('workers-after.conf');
isnt($rc, 0, 'workers after stream without reuseport: fails');
$line = line_of('workers-after.conf', qr/dtls\s+on/);
like($out, rx(qr/"dtls" with 4 worker processes needs/,
	   qr/ "listen 127\.0\.0\.1:$p udp reuseport", so that every datagram/,
	   qr/ of a client reaches one worker, in \Q$d\E\/workers-after\.conf:/,
	   qr/$line\b/),
	'workers after stream without reuseport: message, file and line');

# nginx 1.25.5 and later: stream servers share a listen and are told
# apart by server_name, from the SNI of a TLS ClientHello; nothing chooses
# one for DTLS, so nginx -t refuses a dtls server among them, whichever
# is the default server

SKIP: {
skip 'stream servers share no listen before nginx 1.25.5', 5
	unless $t->has_version('1.25.5');

$t->write_file_expand('shared.conf', <<'EOF');
%%TEST_GLOBALS%%
events {
}

stream {
    server {
        listen         127.0.0.1:%%PORT_8980_UDP%% udp;
        server_name    a.example;
        dtls           on;
        dtls_psk_file  ok.psk;
        return         a;
    }

    server {
        listen         127.0.0.1:%%PORT_8980_UDP%% udp;
        server_name    b.example;
        return         b;
    }
}
EOF

($rc, $out) = $t->test_config('shared.conf');
isnt($rc, 0, 'shared listen, dtls default server: fails');
$line = line_of('shared.conf', qr/dtls\s+on/);
like($out, rx(qr/"dtls" needs "listen 127\.0\.0\.1:$p" for itself, but 2/,
	   qr/ servers share it: a DTLS client cannot choose one by/,
	   qr/ "server_name", in \Q$d\E\/shared\.conf:$line\b/),
	'shared listen, dtls default server: message, file and line');

$t->write_file_expand('shared-named.conf', <<'EOF');
%%TEST_GLOBALS%%
events {
}

stream {
    server {
        listen         127.0.0.1:%%PORT_8980_UDP%% udp;
        return         a;
    }

    server {
        listen         127.0.0.1:%%PORT_8980_UDP%% udp;
        server_name    b.example;
        dtls           on;
        dtls_psk_file  ok.psk;
        return         b;
    }
}
EOF

($rc, $out) = $t->test_config('shared-named.conf');
isnt($rc, 0, 'shared listen, dtls named server: fails');
$line = line_of('shared-named.conf', qr/dtls\s+on/);
like($out, rx(qr/"dtls" needs "listen 127\.0\.0\.1:$p" for itself, but 2/,
	   qr/ servers share it: .* in \Q$d\E\/shared-named\.conf:$line\b/),
	'shared listen, dtls named server: message, file and line');

# a server_name of a dtls server alone on its listen is only a name

$t->write_file_expand('named.conf', <<'EOF');
%%TEST_GLOBALS%%
events {
}

stream {
    server {
        listen         127.0.0.1:%%PORT_8980_UDP%% udp;
        server_name    a.example;
        dtls           on;
        dtls_psk_file  ok.psk;
        return         a;
    }

    server {
        listen         127.0.0.1:%%PORT_8981%%;
        server_name    b.example;
        return         b;
    }
}
EOF

($rc, $out) = $t->test_config('named.conf');
is($rc, 0, 'server_name, listen of its own: passes');

}

# a handshake holds a connection: dtls_handshake_limit cannot exceed
# worker_connections, wherever the events block is written

$t->write_file_expand('limit.conf', <<'EOF');
%%TEST_GLOBALS%%
stream {
    server {
        listen                127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                  on;
        dtls_psk_file         ok.psk;
        dtls_handshake_limit  600;
        return                ok;
    }
}

events {
    worker_connections  512;
}
EOF

($rc, $out) = $t->test_config('limit.conf');
isnt($rc, 0, 'handshake limit over worker_connections: fails');
$line = line_of('limit.conf', qr/dtls\s+on/);
like($out, rx(qr/"dtls_handshake_limit 600" exceeds "worker_connections/,
	   qr/ 512": a handshake holds a connection, in \Q$d\E\/limit\.conf:/,
	   qr/$line\b/),
	'handshake limit over worker_connections: message, file and line');

# proxy_requests in a dtls server

$t->write_file_expand('requests.conf', <<'EOF');
%%TEST_GLOBALS%%
events {
}

stream {
    server {
        listen          127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls            on;
        dtls_psk_file   ok.psk;
        proxy_requests  1;
        proxy_pass      127.0.0.1:%%PORT_8982_UDP%%;
    }
}
EOF

($rc, $out) = $t->test_config('requests.conf');
isnt($rc, 0, 'proxy_requests: fails');
$line = line_of('requests.conf', qr/dtls\s+on/);
like($out, rx(qr/"proxy_requests" cannot be used with "dtls": .*/,
	   qr/ in \Q$d\E\/requests\.conf:$line\b/),
	'proxy_requests: message, file and line');

# proxy_responses ends the session after that many upstream datagrams:
# the client's next record would start a session that cannot read it

$t->write_file_expand('responses.conf', <<'EOF');
%%TEST_GLOBALS%%
events {
}

stream {
    server {
        listen           127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls             on;
        dtls_psk_file    ok.psk;
        proxy_responses  1;
        proxy_pass       127.0.0.1:%%PORT_8982_UDP%%;
    }
}
EOF

($rc, $out) = $t->test_config('responses.conf');
isnt($rc, 0, 'proxy_responses: fails');
$line = line_of('responses.conf', qr/dtls\s+on/);
like($out, rx(qr/"proxy_responses" cannot be used with "dtls": .*/,
	   qr/ in \Q$d\E\/responses\.conf:$line\b/),
	'proxy_responses: message, file and line');

# dtls_mtu out of range

$t->write_file_expand('mtu.conf', <<'EOF');
%%TEST_GLOBALS%%
events {
}

stream {
    server {
        listen         127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls           on;
        dtls_psk_file  ok.psk;
        dtls_mtu       100;
        return         ok;
    }
}
EOF

($rc, $out) = $t->test_config('mtu.conf');
isnt($rc, 0, 'dtls_mtu 100: fails');
$line = line_of('mtu.conf', qr/dtls_mtu/);
like($out, rx(qr/"dtls_mtu" directive must be between 256 and 65507/,
	   qr/ in \Q$d\E\/mtu\.conf:$line\b/),
	'dtls_mtu 100: message, file and line');

# dtls on without dtls_psk_file

$t->write_file_expand('nopsk.conf', <<'EOF');
%%TEST_GLOBALS%%
events {
}

stream {
    server {
        listen  127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls    on;
        return  ok;
    }
}
EOF

($rc, $out) = $t->test_config('nopsk.conf');
isnt($rc, 0, 'no dtls_psk_file: fails');
$line = line_of('nopsk.conf', qr/dtls\s+on/);
like($out, rx(qr/no "dtls_psk_file" or "dtls_certificate" is defined /,
	   qr/for "dtls on" in \Q$d\E\/nopsk\.conf:$line\b/),
	'no dtls_psk_file: message, file and line');

# PSK file problems: the reason, the file, its line, the conf and its line;
# neither the output nor the error log shows a key

for my $case (@bad) {
	my ($name, $content, $reason) = @$case;

	psk_file("$name.psk", $content);
	dtls_conf("$name.conf", "$name.psk");

	my $mark = $t->log_mark();
	($rc, $out) = $t->test_config("$name.conf");
	$line = line_of("$name.conf", qr/dtls_psk_file/);

	isnt($rc, 0, "psk $name: fails");
	like($out, rx(qr/\[emerg\] PSK file "\Q$d\E\/$name\.psk", $reason/,
		qr/ in \Q$d\E\/$name\.conf:$line\b/),
		"psk $name: message, file and line");

	my @keys = key_pieces($content);
	my $log = $t->error_log($mark);

	ok(@keys && !grep({ index($out, $_) >= 0 } @keys),
		"psk $name: no key in output");
	ok(@keys && !grep({ index($log, $_) >= 0 } @keys),
		"psk $name: no key in error log");
}

# a PSK file without keys: only comments and blank lines, or empty

psk_file('nokeys.psk', "# identity:hexkey\n\n   \n# " . hexkey(16) . "\n");
dtls_conf('nokeys.conf', 'nokeys.psk');

($rc, $out) = $t->test_config('nokeys.conf');
$line = line_of('nokeys.conf', qr/dtls_psk_file/);
isnt($rc, 0, 'psk comments only: fails');
like($out, rx(qr/PSK file "\Q$d\E\/nokeys\.psk" has no keys/,
	   qr/ in \Q$d\E\/nokeys\.conf:$line\b/),
	'psk comments only: message, file and line');

psk_file('empty.psk', '');
dtls_conf('empty.conf', 'empty.psk');

($rc, $out) = $t->test_config('empty.conf');
$line = line_of('empty.conf', qr/dtls_psk_file/);
isnt($rc, 0, 'psk empty: fails');
like($out, rx(qr/PSK file "\Q$d\E\/empty\.psk" has no keys/,
	   qr/ in \Q$d\E\/empty\.conf:$line\b/),
	'psk empty: message, file and line');

# a missing PSK file, by relative and by absolute path

dtls_conf('missing.conf', 'missing.psk');

($rc, $out) = $t->test_config('missing.conf');
$line = line_of('missing.conf', qr/dtls_psk_file/);
isnt($rc, 0, 'psk missing: fails');
like($out, rx(qr/cannot open PSK file "\Q$d\E\/missing\.psk"/,
	   qr/ \(2: No such file or directory\)/,
	   qr/ in \Q$d\E\/missing\.conf:$line\b/),
	'psk missing: message, file and line');

dtls_conf('missing-abs.conf', "$d/nodir/missing.psk");

($rc, $out) = $t->test_config('missing-abs.conf');
like($out, rx(qr/cannot open PSK file "\Q$d\E\/nodir\/missing\.psk"/,
	   qr/ \(2: No such file or directory\)/),
	'psk missing, absolute path: message');

# valid edge cases pass, without a warning

for my $case (@good) {
	my ($name, $content) = @$case;

	psk_file("$name.psk", $content);
	dtls_conf("$name.conf", "$name.psk");

	($rc, $out) = $t->test_config("$name.conf");
	ok($rc == 0 && $out !~ /\[(emerg|warn)\]/, "psk $name: passes")
		or diag($out);
}

# permissions: readable by others or by the group warns, 0600 does not

my $content = "dev:" . hexkey(16) . "\n";

psk_file('others.psk', $content, 0644);
dtls_conf('others.conf', 'others.psk');

($rc, $out) = $t->test_config('others.conf');
is($rc, 0, 'psk mode 0644: passes');
like($out, rx(qr/\[warn\] PSK file "\Q$d\E\/others\.psk" is readable by others,/,
	   qr/ keep it to its owner \(chmod 600\)/),
	'psk mode 0644: warning');

psk_file('group.psk', $content, 0640);
dtls_conf('group.conf', 'group.psk');

($rc, $out) = $t->test_config('group.conf');
is($rc, 0, 'psk mode 0640: passes');
like($out, qr/\[warn\] PSK file "\Q$d\E\/group\.psk" is readable by its group/,
	'psk mode 0640: warning');

psk_file('owner.psk', $content, 0600);
dtls_conf('owner.conf', 'owner.psk');

($rc, $out) = $t->test_config('owner.conf');
unlike($out, qr/\[warn\]/, 'psk mode 0600: no warning');

###############################################################################

# reload re-reads the PSK file

my $keya = hexkey(16);
my $keyb = hexkey(16);

psk_file('psk', "dev:$keya\n");

$t->write_file_expand('nginx.conf', <<'EOF');

events {
}

stream {
    server {
        listen                  127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                    on;
        dtls_psk_file           psk;
        dtls_handshake_timeout  1s;
        return                  "ok";
    }
}

EOF

$t->run();

sub client {
	my ($key, $timeout) = @_;

	my ($o) = $t->run_tool({ timeout => 10 }, 'dtls_client',
		'-m', 'send-only', '-i', 'dev', '-k', $key,
		'-c', "127.0.0.1:$p", '-t', $timeout || 3000);
	return $o;
}

$out = client($keya);
like($out, qr/^handshake ok .*^recv ok$/ms, 'key A: works');

# the old worker, still holding key A, may answer a handshake right after
# the reload: wait until it is gone, so that key B meets the new one

psk_file('psk', "dev:$keyb\n");

my %old = map { $_ => 1 } $t->workers();
ok($t->reload() && $t->wait_for(sub { !grep { $old{$_} } $t->workers() }, 10),
	'reload with key B');

$out = client($keyb);
like($out, qr/^handshake ok .*^recv ok$/ms, 'after reload: key B works');

my $mark = $t->log_mark();
$out = client($keya, 2000);
like($out, qr/^handshake failed/m, 'after reload: key A fails');
unlike($out, qr/^recv ok$/m, 'after reload: key A gets nothing');
ok($t->wait_log(rx(qr/DTLS handshake failed: timed out: the client's Finished/,
	   qr/ did not decrypt, wrong PSK\?/), 3, $mark),
	'after reload: key A logged as wrong PSK');

# a reload with a broken PSK file keeps the running configuration

my @workers = $t->workers();

psk_file('psk', "dev:" . hexkey(15) . "\n");
$mark = $t->log_mark();
kill 'HUP', $t->pid();

ok($t->wait_log(qr/\[emerg\] .*PSK file "\Q$d\E\/psk", line 1: key must be/,
	5, $mark), 'broken reload: emerg logged');
ok($t->running(), 'broken reload: nginx still running');
is(join(' ', $t->workers()), join(' ', @workers),
	'broken reload: same workers');

$out = client($keyb);
like($out, qr/^handshake ok .*^recv ok$/ms, 'broken reload: key B works');

# no key in the debug error log, whatever happened

my $log = $t->error_log();
ok(index($log, $keya) < 0 && index($log, $keyb) < 0,
	'reload: no key in error log');
is(join("\n", $t->grep_log(qr/\[(alert|crit)\]/)), '',
	'reload: no alert or crit');

###############################################################################
