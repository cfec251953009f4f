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
use Test::Nginx::DTLS qw/ :DEFAULT line_of rx /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, 'dtls_client');

my $d = $t->testdir();
my $p = port(8980, udp => 1);
my $ptcp = port(8981);

# a configuration of one stream block, the harness's globals and an
# events block around it; each server given as its directives on one
# line, written one a line.  Options: main (directives before events),
# after (directives after stream), events (inside events), events_last
# (events after stream)

sub conf {
	my (%o) = @_;

	my $servers = join "\n", map {
		"    server {\n"
		. join('', map { "        $_;\n" } split /;\s*/, $_)
		. "    }\n"
	} @{$o{servers}};

	my $events = "events {\n" . ($o{events} ? "    $o{events}\n" : '') . "}\n";
	my $stream = "stream {\n$servers}\n";

	return "%%TEST_GLOBALS%%\n" . ($o{main} ? "$o{main}\n\n" : '')
		. ($o{events_last} ? "$stream\n$events" : "$events\n$stream")
		. ($o{after} ? "\n$o{after}\n" : '');
}

# a configuration with one udp dtls server using a PSK file

sub dtls_conf {
	my ($name, $psk) = @_;

	$t->write_file_expand($name, conf(servers => [
		"listen 127.0.0.1:%%PORT_8980_UDP%% udp; dtls on;"
		. " dtls_psk_file $psk; return ok" ]));
}

my $dtls = 'listen 127.0.0.1:%%PORT_8980_UDP%% udp; dtls on;'
	. ' dtls_psk_file ok.psk';

# what "nginx -t" says of a configuration: [ title, file, conf, expect ],
# where expect is 'pass' (and nothing to complain of), or the pieces of
# the message that fails it, which goes on with the file and the line of
# "dtls on" (another directive with at =>; none with noline =>); psk =>
# writes PSK files first, version => is the nginx the case needs

my @confs = (

	[ 'tcp listen', 'tcp', conf(servers => [
		'listen 127.0.0.1:%%PORT_8981%%; dtls on; dtls_psk_file ok.psk;'
		. ' return ok' ]),
	  [ qr/"dtls" needs "listen \.\.\. udp", but "listen 127\.0\.0\.1:$ptcp"/,
	    qr/ is not udp,/ ] ],

	# two workers need reuseport, which then passes; worker_processes
	# written after the stream block too: the check sees the final value

	[ 'workers without reuseport', 'workers',
	  conf(main => 'worker_processes  2;',
		servers => [ "$dtls; return ok" ]),
	  [ qr/"dtls" with 2 worker processes needs/,
	    qr/ "listen 127\.0\.0\.1:$p udp reuseport", so that every datagram/,
	    qr/ of a client reaches one worker,/ ] ],

	[ 'workers with reuseport', 'reuseport',
	  conf(main => 'worker_processes  2;', servers => [
		'listen 127.0.0.1:%%PORT_8980_UDP%% udp reuseport; dtls on;'
		. ' dtls_psk_file ok.psk; return ok' ]),
	  'pass' ],

	[ 'workers after stream without reuseport', 'workers-after',
	  conf(after => 'worker_processes  4;',
		servers => [ "$dtls; return ok" ]),
	  [ qr/"dtls" with 4 worker processes needs/,
	    qr/ "listen 127\.0\.0\.1:$p udp reuseport", so that every datagram/,
	    qr/ of a client reaches one worker,/ ] ],

	# nginx 1.25.5 and later: stream servers share a listen and are told
	# apart by server_name, from the SNI of a TLS ClientHello; nothing
	# chooses one for DTLS, so nginx -t refuses a dtls server among them,
	# whichever is the default server; a server_name of a dtls server
	# alone on its listen is only a name

	[ 'shared listen, dtls default server', 'shared', conf(servers => [
		'listen 127.0.0.1:%%PORT_8980_UDP%% udp; server_name a.example;'
		. ' dtls on; dtls_psk_file ok.psk; return a',
		'listen 127.0.0.1:%%PORT_8980_UDP%% udp; server_name b.example;'
		. ' return b' ]),
	  [ qr/"dtls" needs "listen 127\.0\.0\.1:$p" for itself, but 2/,
	    qr/ servers share it: a DTLS client cannot choose one by/,
	    qr/ "server_name",/ ], version => '1.25.5' ],

	[ 'shared listen, dtls named server', 'shared-named', conf(servers => [
		'listen 127.0.0.1:%%PORT_8980_UDP%% udp; return a',
		'listen 127.0.0.1:%%PORT_8980_UDP%% udp; server_name b.example;'
		. ' dtls on; dtls_psk_file ok.psk; return b' ]),
	  [ qr/"dtls" needs "listen 127\.0\.0\.1:$p" for itself, but 2/,
	    qr/ servers share it: .*/ ], version => '1.25.5' ],

	[ 'server_name, listen of its own', 'named', conf(servers => [
		'listen 127.0.0.1:%%PORT_8980_UDP%% udp; server_name a.example;'
		. ' dtls on; dtls_psk_file ok.psk; return a',
		'listen 127.0.0.1:%%PORT_8981%%; server_name b.example;'
		. ' return b' ]),
	  'pass', version => '1.25.5' ],

	# a handshake holds a connection: dtls_handshake_limit cannot exceed
	# worker_connections, wherever the events block is written

	[ 'handshake limit over worker_connections', 'limit',
	  conf(events => 'worker_connections  512;', events_last => 1,
		servers => [ "$dtls; dtls_handshake_limit 600; return ok" ]),
	  [ qr/"dtls_handshake_limit 600" exceeds "worker_connections/,
	    qr/ 512": a handshake holds a connection,/ ] ],

	# proxy_responses ends the session after that many upstream
	# datagrams: the client's next record would start a session that
	# cannot read it

	[ 'proxy_requests', 'requests', conf(servers => [
		"$dtls; proxy_requests 1; proxy_pass 127.0.0.1:%%PORT_8982_UDP%%" ]),
	  [ qr/"proxy_requests" cannot be used with "dtls": .*/ ] ],

	[ 'proxy_responses', 'responses', conf(servers => [
		"$dtls; proxy_responses 1;"
		. ' proxy_pass 127.0.0.1:%%PORT_8982_UDP%%' ]),
	  [ qr/"proxy_responses" cannot be used with "dtls": .*/ ] ],

	[ 'dtls_mtu 100', 'mtu', conf(servers => [
		"$dtls; dtls_mtu 100; return ok" ]),
	  [ qr/"dtls_mtu" directive must be between 256 and 65507/ ],
	  at => qr/dtls_mtu/ ],

	[ 'no dtls_psk_file', 'nopsk', conf(servers => [
		'listen 127.0.0.1:%%PORT_8980_UDP%% udp; dtls on; return ok' ]),
	  [ qr/no "dtls_psk_file" or "dtls_certificate" is defined /,
	    qr/for "dtls on"/ ] ],

	# a PSK file without keys (only comments and blank lines, or empty);
	# a missing one, by relative and by absolute path

	[ 'psk comments only', 'nokeys', undef,
	  [ qr/PSK file "\Q$d\E\/nokeys\.psk" has no keys/ ],
	  psk => "# identity:hexkey\n\n   \n# " . hexkey(16) . "\n",
	  at => qr/dtls_psk_file/ ],

	[ 'psk empty', 'empty', undef,
	  [ qr/PSK file "\Q$d\E\/empty\.psk" has no keys/ ],
	  psk => '', at => qr/dtls_psk_file/ ],

	[ 'psk missing', 'missing', undef,
	  [ qr/cannot open PSK file "\Q$d\E\/missing\.psk"/,
	    qr/ \(2: No such file or directory\)/ ],
	  at => qr/dtls_psk_file/ ],

	[ 'psk missing, absolute path', 'missing-abs', undef,
	  [ qr/cannot open PSK file "\Q$d\E\/nodir\/missing\.psk"/,
	    qr/ \(2: No such file or directory\)/ ],
	  psk_path => "$d/nodir/missing.psk", noline => 1 ],
);

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

# PSK file permissions: [ mode, name, the warning or undef for none ]

my @modes = (
	[ 0644, 'others', rx(qr/\[warn\] PSK file "\Q$d\E\/others\.psk" is /,
		qr/readable by others, keep it to its owner \(chmod 600\)/) ],
	[ 0640, 'group',
		qr/\[warn\] PSK file "\Q$d\E\/group\.psk" is readable by its group/ ],
	[ 0600, 'owner', undef ],
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

$t->plan(2 * @confs + 4 * @bad + @good + 2 * @modes + 12);

###############################################################################

psk_file($t, 'ok.psk', "dev:" . hexkey(16) . "\n");

for my $case (@confs) {
	my ($title, $name, $conf, $expect, %o) = @$case;

	SKIP: {
	skip "stream servers share no listen before nginx $o{version}", 2
		if $o{version} && !$t->has_version($o{version});

	psk_file($t, "$name.psk", $o{psk}) if defined $o{psk};

	if (defined $conf) {
		$t->write_file_expand("$name.conf", $conf);
	} else {
		dtls_conf("$name.conf", $o{psk_path} || "$name.psk");
	}

	my ($rc, $out) = test_config($t, "$name.conf");

	if (!ref $expect) {
		is($rc, 0, "$title: passes");
		unlike($out, qr/\[(emerg|warn)\]/, "$title: no complaint");
		next;
	}

	isnt($rc, 0, "$title: fails");

	if ($o{noline}) {
		like($out, rx(@$expect), "$title: message");
		next;
	}

	my $line = line_of($t, "$name.conf", $o{at} || qr/dtls\s+on/);
	like($out, rx(@$expect, qr/ in \Q$d\E\/$name\.conf:$line\b/),
		"$title: message, file and line");
	}
}

# PSK file problems: the reason, the file, its line, the conf and its line;
# neither the output nor the error log shows a key

for my $case (@bad) {
	my ($name, $content, $reason) = @$case;

	psk_file($t, "$name.psk", $content);
	dtls_conf("$name.conf", "$name.psk");

	my $mark = log_mark($t);
	my ($rc, $out) = test_config($t, "$name.conf");
	my $line = line_of($t, "$name.conf", qr/dtls_psk_file/);

	isnt($rc, 0, "psk $name: fails");
	like($out, rx(qr/\[emerg\] PSK file "\Q$d\E\/$name\.psk", $reason/,
		qr/ in \Q$d\E\/$name\.conf:$line\b/),
		"psk $name: message, file and line");

	my @keys = key_pieces($content);
	my $log = error_log($t, $mark);

	ok(@keys && !grep({ index($out, $_) >= 0 } @keys),
		"psk $name: no key in output");
	ok(@keys && !grep({ index($log, $_) >= 0 } @keys),
		"psk $name: no key in error log");
}

# valid edge cases pass, without a warning

for my $case (@good) {
	my ($name, $content) = @$case;

	psk_file($t, "$name.psk", $content);
	dtls_conf("$name.conf", "$name.psk");

	my ($rc, $out) = test_config($t, "$name.conf");
	ok($rc == 0 && $out !~ /\[(emerg|warn)\]/, "psk $name: passes")
		or diag($out);
}

# permissions: readable by others or by the group warns, 0600 does not

my $content = "dev:" . hexkey(16) . "\n";

for my $case (@modes) {
	my ($mode, $name, $warning) = @$case;
	my $title = sprintf 'psk mode %04o', $mode;

	psk_file($t, "$name.psk", $content, $mode);
	dtls_conf("$name.conf", "$name.psk");

	my ($rc, $out) = test_config($t, "$name.conf");
	is($rc, 0, "$title: passes");

	if ($warning) {
		like($out, $warning, "$title: warning");
	} else {
		unlike($out, qr/\[warn\]/, "$title: no warning");
	}
}

###############################################################################

# reload re-reads the PSK file

my $keya = hexkey(16);
my $keyb = hexkey(16);

psk_file($t, 'psk', "dev:$keya\n");

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

# a handshake with the key, a datagram sent and its answer read

my @dev = ('-m', 'send-only', '-i', 'dev', '-c', "127.0.0.1:$p");

my $out = dtls_client($t, { timeout => 10 }, @dev, '-k', $keya,
	'-t', 3000);
like($out, qr/^handshake ok .*^recv ok$/ms, 'key A: works');

# the old worker, still holding key A, may answer a handshake right after
# the reload: wait until it is gone, so that key B meets the new one

psk_file($t, 'psk', "dev:$keyb\n");

ok(reload_done($t), 'reload with key B');

$out = dtls_client($t, { timeout => 10 }, @dev, '-k', $keyb,
	'-t', 3000);
like($out, qr/^handshake ok .*^recv ok$/ms, 'after reload: key B works');

my $mark = log_mark($t);
$out = dtls_client($t, { timeout => 10 }, @dev, '-k', $keya,
	'-t', 2000);
like($out, qr/^handshake failed/m, 'after reload: key A fails');
unlike($out, qr/^recv ok$/m, 'after reload: key A gets nothing');
ok(wait_log($t, rx(qr/DTLS handshake failed: timed out: the client's Finished/,
	   qr/ did not decrypt, wrong PSK\?/), 3, $mark),
	'after reload: key A logged as wrong PSK');

# a reload with a broken PSK file keeps the running configuration

my @workers = workers($t);

psk_file($t, 'psk', "dev:" . hexkey(15) . "\n");
$mark = log_mark($t);
kill 'HUP', nginx_pid($t);

ok(wait_log($t, qr/\[emerg\] .*PSK file "\Q$d\E\/psk", line 1: key must be/,
	5, $mark), 'broken reload: emerg logged');
ok(running($t), 'broken reload: nginx still running');
is(join(' ', workers($t)), join(' ', @workers),
	'broken reload: same workers');

$out = dtls_client($t, { timeout => 10 }, @dev, '-k', $keyb,
	'-t', 3000);
like($out, qr/^handshake ok .*^recv ok$/ms, 'broken reload: key B works');

# no key in the debug error log, whatever happened

my $log = error_log($t);
ok(index($log, $keya) < 0 && index($log, $keyb) < 0,
	'reload: no key in error log');
is(join("\n", grep_log($t, qr/\[(alert|crit)\]/)), '',
	'reload: no alert or crit');

###############################################################################
