#!/usr/bin/perl

# Malformed and hostile datagrams: nginx answers nothing it should not,
# keeps nothing for them, logs them as documented, and keeps serving good
# clients.  ClientHellos bent out of shape byte by byte (what
# t/dtls_cookie.t does not already cover: oversized, long cookie, long
# session_id, odd cipher_suites, extensions of the wrong length, one
# ClientHello split over two records, two ClientHellos in one datagram);
# garbage into a handshake in progress and into an established session;
# garbage from a session's address does not keep it past proxy_timeout;
# data after close_notify; a flood of garbage from many ports.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::Hello qw/ :DEFAULT send_udp4 /;

use IO::Select;
use POSIX qw/ WNOHANG /;
use Socket qw/ PF_INET SOCK_RAW /;
use Time::HiRes qw/ time sleep /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, qw/ dtls_client udp_echo udp_relay /);

my $key = hexkey();
psk_file($t, 'psk', "dev-1:$key\n");

$t->write_file_expand('nginx.conf', <<'EOF');

worker_shutdown_timeout  1s;

events {
}

stream {
    log_format  dtls  '$remote_port $status $upstream_bytes_sent '
                      '$upstream_bytes_received';

    access_log  %%TESTDIR%%/access.log  dtls;

    server {
        listen                  127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                    on;
        dtls_psk_file           psk;
        dtls_handshake_timeout  5s;
        proxy_pass              127.0.0.1:%%PORT_8981_UDP%%;
        proxy_timeout           3s;
    }
}

EOF

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1), 'be:');
$t->run()->plan(106);

my $port = port(8980, udp => 1);
my @good = ('-c', "127.0.0.1:$port", '-i', 'dev-1', '-k', $key);

my $good_runs = 0;

###############################################################################

# ClientHellos out of shape: each dropped without a reply and logged with
# its size, or, where it is a ClientHello after all, answered with a
# HelloVerifyRequest no larger than itself; nothing kept either way

my $big_ext = pack('nn', 0xfa00, 59800) . ('e' x 59800);

my @cases = (

	# a record longer than DTLS allows (2^14 bytes, RFC 6347 4.1 and
	# RFC 5246 6.2.1), a ClientHello with a 59800-byte extension in one
	# 59909-byte datagram: an invalid record, discarded

	[ 'oversized record', hello(ext => $big_ext), 'drop' ],

	# a cookie is 0 to 255 bytes long in DTLS 1.2: a 255-byte cookie is a
	# ClientHello with a wrong cookie

	[ '255-byte cookie', hello(cookie => 'c' x 255), 'hvr' ],

	[ '33-byte session_id', hello(session_id => 's' x 33), 'drop' ],
	[ 'cipher_suites length odd', hello(suites => "\xc0\xa8\x00"),
		'drop' ],
	[ 'cipher_suites length past the end', hello(suites_len => 200),
		'drop' ],
	[ 'no compression methods', hello(compression => ''), 'drop' ],
	[ 'extensions length too long',
		hello(ext => "\x00\x17\x00\x00", ext_len => 10), 'drop' ],
	[ 'extensions length too short',
		hello(ext => "\x00\x17\x00\x00\x00\x0b\x00\x02\x01\x00",
			ext_len => 4), 'drop' ],
	[ 'extensions length cut to one byte', hello(ext => '', trim => 1),
		'drop' ],
	[ 'handshake length past the record',
		hello(hs_len_add => 5), 'drop' ],
	[ 'record length past the datagram',
		hello(rec_len_add => 1), 'drop' ],
	[ 'message_seq 7', hello(msg_seq => 7), 'drop' ],
	[ 'one ClientHello split over two records', split_hello(), 'drop' ],
	[ 'two records, second one a ClientHello',
		pack('Cnn', 23, 0xfefd, 0) . pack('nN', 0, 0) . pack('n', 4)
			. 'abcd' . hello(), 'drop' ],
);

for my $case (@cases) {
	my ($name, $dgram, $expect) = @$case;

	my $mark = log_mark($t);
	my $s = client($port);
	my $reply = exchange($s, $dgram);

	if ($expect eq 'drop') {
		ok(!defined $reply, "$name: no reply")
			or diag(length($reply) . ' bytes back to ' . length($dgram));

		my $n = length $dgram;
		ok(wait_log($t, qr/\[info\].*DTLS session must start with a ClientHello, datagram of $n bytes dropped/,
			3, $mark), "$name: logged");

	} else {
		is(msg_type($reply), 3, "$name: HelloVerifyRequest");
		ok(defined $reply && length($reply) <= length($dgram),
			"$name: not larger than the request");
	}

	# nothing kept: no session started

	unlike(error_log($t, $mark), qr/SSL_do_handshake|DTLS handshak/,
		"$name: no handshake");
}

# the oversized ClientHello again, with the cookie of its first 109 bytes
# (a cookie does not cover extensions): no reply, no alert, nothing kept

{
	my %h = (random => random(32));
	my $s = client($port);
	my $cookie = parse_hvr(exchange($s, hello(%h)))->{cookie};

	my $mark = log_mark($t);
	my $reply = exchange($s, hello(%h, cookie => $cookie, msg_seq => 1,
		seq => 1, ext => $big_ext));

	ok(!defined $reply, 'oversized with a cookie: no reply');
	sleep 0.2;
	is(log_alerts($t, $mark), '', 'oversized with a cookie: no alert')
		or diag(log_alerts($t, $mark));
}

# a ClientHello and 60000 bytes of junk after it: answered as the
# ClientHello it starts with, at most once, and nothing more

{
	my $h = hello();
	my $dgram = $h . ('z' x (60000 - length $h));

	my $s = client($port);
	my $mark = log_mark($t);
	my @r = exchange_all($s, $dgram, 1);

	ok(@r <= 1 && (!@r || msg_type($r[0]) == 3),
		'clienthello and junk: at most a HelloVerifyRequest');
	ok(!@r || length($r[0]) == 60, 'clienthello and junk: 60 bytes');
	unlike(error_log($t, $mark), qr/SSL_do_handshake|DTLS handshak/,
		'clienthello and junk: no handshake');
}

# two ClientHellos in one datagram: one HelloVerifyRequest at most; with
# a valid cookie in both, one handshake, one server flight

{
	my %h = (random => random(32));
	my $s = client($port);
	my $mark = log_mark($t);

	my @r = exchange_all($s, hello(%h) . hello(%h, seq => 1), 0.5);
	is(scalar(@r), 1, 'two clienthellos: one reply');
	is(msg_type($r[0]), 3, 'two clienthellos: a HelloVerifyRequest');

	my $cookie = parse_hvr($r[0])->{cookie};

	@r = exchange_all($s, hello(%h, cookie => $cookie, msg_seq => 1,
		seq => 2) . hello(%h, cookie => $cookie, msg_seq => 1, seq => 3),
		0.5);

	is(scalar(grep { msg_type($_) == 2 } @r), 1,
		'two clienthellos with cookie: one ServerHello');
	is(scalar(() = error_log($t, $mark) =~ /udp client 127\.0\.0\.1:${\
		$s->sockport()} connected/g), 2,
		'two clienthellos with cookie: one session after the hvr');

	# the handshake is left to time out (5s), below
}

# a ClientHello that passes the cookie and that OpenSSL refuses (its
# supported_groups of an odd length): the client's doing, logged at info
# and not at crit, where OpenSSL's own failures go

{
	my %h = (random => random(32), ext => "\x00\x0a\x00\x03\x00\x01\x17");
	my $s = client($port);
	my $cookie = parse_hvr(exchange($s, hello(%h)))->{cookie};

	my $mark = log_mark($t);
	exchange($s, hello(%h, cookie => $cookie, msg_seq => 1, seq => 1));

	ok(wait_log($t, qr/\[info\].*DTLS handshake failed.*bad extension/,
		3, $mark), 'refused extension: handshake failed at info');
	is(log_alerts($t, $mark), '', 'refused extension: not crit')
		or diag(log_alerts($t, $mark));
}

good('clienthellos out of shape');

###############################################################################

# a handshake in progress, from Hello.pm: garbage from its address and
# port is dropped by DTLS and does not end it, a fatal alert does

{
	my ($s, $mark, $start) = handshake();

	my @garbage = (
		random(100),
		"\x16",
		# a record header and too little record
		pack('Cnn', 22, 0xfefd, 0) . pack('nN', 0, 2) . pack('n', 50)
			. random(10),
		# epoch 5, application data
		pack('Cnn', 23, 0xfefd, 5) . pack('nN', 0, 1) . pack('n', 40)
			. random(40),
		# epoch 1, a would-be Finished that cannot decrypt
		pack('Cnn', 22, 0xfefd, 1) . pack('nN', 0, 0) . pack('n', 40)
			. random(40),
		# TLS 1.2, not DTLS
		pack('Cnn', 22, 0x0303, 0) . pack('nN', 0, 3) . pack('n', 20)
			. random(20),
		# a ChangeCipherSpec of the wrong size
		pack('Cnn', 20, 0xfefd, 0) . pack('nN', 0, 6) . pack('n', 3)
			. "\1\1\1",
	);

	my @replies;

	for my $g (@garbage) {
		$s->send($g);
		push @replies, drain($s, 0.05);
	}

	# OpenSSL retransmits its flight after 1s, 2s: the session is alive

	push @replies, drain($s, 2.2);

	my @other = grep { !(ord($_) == 22 && msg_type($_) =~ /^(2|14)$/) }
		@replies;

	is(scalar(@other), 0, 'in handshake: garbage not answered')
		or diag(join ', ', map { unpack('H20', $_) } @other);
	ok(scalar(grep { msg_type($_) == 2 } @replies),
		'in handshake: flight retransmitted after the garbage');
	unlike(session_log($s->sockport(), $mark),
		qr/DTLS handshake failed|\[(error|alert|crit)\]/,
		'in handshake: garbage did not end the handshake');
	cmp_ok(time() - $start, '<', 4.5, 'in handshake: before the timeout');

	# a fatal alert in epoch 0 (handshake_failure) ends it at once

	exchange_all($s, pack('Cnn', 21, 0xfefd, 0) . pack('nN', 0, 7)
		. pack('n', 2) . "\2\50", 0.1);

	ok(wait_log($t, qr/\[info\].*DTLS fatal alert received: handshake failure/,
		2, $mark), 'in handshake: alert logged');
	ok(wait_log($t, qr/\[info\].*DTLS handshake failed: alert received/,
		2, $mark), 'in handshake: handshake ended by the alert');
	ok(time() - $start < 5, 'in handshake: ended before the timeout');

	my @after = drain($s, 1.5);
	is(scalar(@after), 0, 'in handshake: nothing after the alert');

	ok(wait_for($t, sub { access_line($t, $s->sockport()) }, 2),
		'in handshake: access log line');
	like(access_line($t, $s->sockport()) // '', qr/^\d+ 400 /,
		'in handshake: status 400');
}

# an empty datagram is no record either: it does not end a handshake

{
	my ($s, $mark, $start) = handshake();

	$s->send('');
	my @replies = drain($s, 1.5);

	ok(scalar(grep { msg_type($_) == 2 } @replies),
		'in handshake, empty datagram: flight retransmitted after it');
	unlike(session_log($s->sockport(), $mark),
		qr/DTLS handshake failed|\[(error|alert|crit)\]/,
		'in handshake, empty datagram: handshake not ended')
		or diag(join "\n", grep { /\[info\]/ }
			split /\n/, session_log($s->sockport(), $mark));

	# the alert ends it, as above (or, if the empty datagram did, goes to
	# a session of its own)

	exchange_all($s, pack('Cnn', 21, 0xfefd, 0) . pack('nN', 0, 7)
		. pack('n', 2) . "\2\50", 0.1);
	wait_log($t, qr/DTLS fatal alert received|ClientHello, datagram of 15/,
		2, $mark);
}

good('handshake with garbage');

###############################################################################

# an established session: dtls_client through udp_relay, which sends a
# corrupted copy before every encrypted datagram of the client (a flipped
# bit, a truncation, epoch 5, TLS version, a record length past the end;
# then an empty datagram): every copy is dropped, every echo comes back,
# the backend gets each datagram once

for my $kinds ('01234', '5') {
	my $name = $kinds eq '5' ? 'established, empty datagrams'
		: 'established, corrupted records';

	my $mark = log_mark($t);
	my $relay = udp_relay($t, $port, '-c', 100, '-K', $kinds, '-s', 3);

	my ($out, $rc) = dtls_client($t, { timeout => 20 },
		'-c', "127.0.0.1:$relay->{port}", '-i', 'dev-1', '-k', $key,
		'-m', 'echo', '-n', 10, '-t', 3000);

	like($out, qr/^echo ok n=10$/m, "$name: echoes through garbage")
		or diag($out);
	like($out, qr/^close_notify received$/m, "$name: closed");

	my $stats = udp_relay_stop($t, $relay);
	cmp_ok($stats->{corrupted} // 0, '>=', 10, "$name: copies sent")
		or diag($stats->{line});

	my $from = client_port($t, $mark);

	ok(wait_for($t, sub { access_line($t, $from) }, 4),
		"$name: access log line");

	# "hello-1" .. "hello-10": 71 bytes to the backend, 101 back

	like(access_line($t, $from) // '', qr/^$from 200 71 101$/,
		"$name: backend got each datagram once");
	unlike(session_log($from, $mark),
		qr/DTLS session failed|\[(error|alert|crit)\]/,
		"$name: no failure")
		or diag(join "\n", grep { /\[info\]/ }
			split /\n/, session_log($from, $mark));
}

good('established session with garbage');

###############################################################################

# garbage from the address and port of an idle session (a raw socket
# forges the source): the proxy counts each datagram as activity, but the
# session still ends once idle past proxy_timeout (3s), and the client's
# next record, after a pause of 5s, finds it closed

SKIP: {
	socket(my $raw, PF_INET, SOCK_RAW, 255)
		or skip "no raw socket (root only): $!", 7;

	my $mark = log_mark($t);

	my $client = daemon($t, tool($t, 'dtls_client'), @good,
		'-m', 'echo', '-n', 2, '-W', 5000, '-t', 3000);

	ok(wait_for($t, sub { daemon_output($t, $client) =~ /^pause/m }, 5),
		'idle with garbage: first echo');

	my $from = client_port($t, $mark);

	for (1 .. 9) {
		sleep 0.5;
		send_udp4($raw, '127.0.0.1', $from, $port, random(40));
	}

	ok(wait_for($t, sub { daemon_output($t, $client) =~ /^close_notify/m },
		5), 'idle with garbage: client done')
		or diag(daemon_output($t, $client));
	unlike(daemon_output($t, $client), qr/^echo ok/m,
		'idle with garbage: second echo not answered');
	like(session_log($from, $mark), qr/\[info\].*DTLS session idle for /,
		'idle with garbage: logged');

	# records of the session's epoch too short for a nonce and a tag, of
	# each content type, forged from its address: OpenSSL 3.0 takes such a
	# record for a fatal error of the session; here each is dropped and
	# the session goes on

	$mark = log_mark($t);

	$client = daemon($t, tool($t, 'dtls_client'), @good,
		'-m', 'echo', '-n', 2, '-W', 1000, '-t', 3000);

	ok(wait_for($t, sub { daemon_output($t, $client) =~ /^pause/m }, 5),
		'short records: first echo');

	$from = client_port($t, $mark);

	for my $type (20 .. 23) {
		for my $len (0, 1, 8, 15, 23) {
			my $rec = pack('Cnn', $type, 0xfefd, 1) . pack('nN', 0, 1000 + $len)
				. pack('n', $len) . random($len);
			send_udp4($raw, '127.0.0.1', $from, $port, $rec);
		}
	}

	ok(wait_for($t, sub { daemon_output($t, $client) =~ /^echo ok/m }, 5),
		'short records: the session goes on')
		or diag(daemon_output($t, $client));
	unlike(session_log($from, $mark), qr/DTLS session failed|\[(error|alert|crit)\]/,
		'short records: no failure');
}

###############################################################################

# data after close_notify: openssl s_client writes "late", then
# close_notify; the relay holds the data record (-T 23) until the client's
# next datagram, so nginx gets close_notify first, then the data: nothing
# of it reaches the backend, nothing is answered

SKIP: {
	skip 'no openssl', 7 unless `openssl version 2>/dev/null` =~ /^OpenSSL/;

	my $mark = log_mark($t);
	my $relay = udp_relay($t, $port, '-T', 23, '-w', 5000);

	my $out = $t->testdir() . '/s_client.out';

	my $pid = open(my $in, '|-', 'timeout 15 openssl s_client -dtls1_2 -quiet '
		. "-no_ign_eof -connect 127.0.0.1:$relay->{port} "
		. "-psk_identity dev-1 -psk $key -cipher PSK-AES128-GCM-SHA256 "
		. "> $out 2>&1")
		or die "Can't run openssl: $!\n";

	$in->autoflush(1);
	print $in "late\n";

	# the handshake, then "late" sent and held by the relay

	wait_log($t, qr/udp proxy .* connected/, 5, $mark);
	sleep 0.5;

	# EOF: s_client sends close_notify and exits

	close $in;

	ok(wait_log($t, qr/client closed DTLS session \(close_notify\)/, 5,
		$mark), 'after close_notify: close_notify logged');
	ok(wait_log($t, qr/dtls record of no live session dropped/, 6, $mark),
		'after close_notify: data record dropped');

	my $stats = udp_relay_stop($t, $relay);
	is($stats->{reordered}, 1, 'after close_notify: data went after it')
		or diag($stats->{line});

	my $from = client_port($t, $mark);

	ok(wait_for($t, sub { access_line($t, $from) }, 3),
		'after close_notify: access log line');
	like(access_line($t, $from) // '', qr/^$from 200 0 0$/,
		'after close_notify: nothing reached the backend');

	# the session that dropped the data record sent nothing

	my ($id) = error_log($t, $mark)
		=~ /\*(\d+) dtls record of no live session dropped/;
	$id //= 0;

	is(scalar(grep { /\*$id sendmsg/ } split /\n/, error_log($t, $mark)), 0,
		'after close_notify: no reply');
	ok(!grep({ /\[info\].*\*$id .*must start with a ClientHello/ }
		split /\n/, error_log($t, $mark)),
		'after close_notify: debug only');
}

good('data after close_notify');

###############################################################################

# a flood: 2,000 garbage datagrams, each from a port of its own; no reply
# to any, nginx keeps serving

{
	my $mark = log_mark($t);
	my $replies = 0;
	my $sent = 0;
	my $start = time();

	for my $batch (1 .. 8) {
		my @s = map { client($port) } 1 .. 250;

		for my $i (0 .. $#s) {
			$s[$i]->send(garbage($batch * 1000 + $i));
			$sent++;
		}

		my $sel = IO::Select->new(@s);
		my $end = time() + 0.3;

		while (my @ready = $sel->can_read($end - time())) {
			for my $r (@ready) {
				my $buf;
				$r->recv($buf, 65536);
				$replies++ if defined $buf;
				$sel->remove($r);
			}
			last if time() >= $end;
		}

		close $_ for @s;
	}

	is($sent, 2000, 'flood: 2000 datagrams sent');
	is($replies, 0, 'flood: no reply');
	diag(sprintf('flood: %.1fs, %d logged', time() - $start,
		scalar(grep_log($t, qr/must start with a ClientHello/, $mark))))
		if $ENV{TEST_NGINX_VERBOSE};

	ok(running($t), 'flood: nginx running');
	is(log_alerts($t, $mark), '', 'flood: no alerts');
}

good('flood');

###############################################################################

# what was kept: access log lines only for sessions past a valid cookie

$t->stop();

my @access = access_lines($t);

# good: the good clients, two relayed sessions, the two with forged
# datagrams (raw sockets: root only), s_client; failed: the handshakes
# ended by alerts (2), the refused extension and the one with two
# ClientHellos, timed out

my $forged = ($< == 0) ? 2 : 0;

is(scalar(grep { / 200 \d+ \d+$/ } @access), $good_runs + 3 + $forged,
	'access log: good sessions, the relayed ones, the forged, s_client');
is(scalar(grep { / 400 / } @access), 4,
	'access log: the four failed handshakes');
is(scalar(@access), $good_runs + 7 + $forged, 'access log: nothing else')
	or diag(join "\n", @access);

is(log_alerts($t), '', 'no alerts');

###############################################################################

# a DTLS 1.2 ClientHello with the options of Test::DTLS::Hello and more:
# extensions (ext, ext_len), lengths bent (suites_len, hs_len_add,
# rec_len_add), compression methods

sub hello {
	my (%o) = @_;

	my $cookie = $o{cookie} // '';
	my $sid = $o{session_id} // '';
	my $suites = $o{suites} // "\xc0\xa8\x00\xa8\x00\xa9";
	my $comp = $o{compression} // "\0";

	my $body = pack('n', 0xfefd) . ($o{random} // random(32))
		. pack('C', length $sid) . $sid
		. pack('C', length $cookie) . $cookie
		. pack('n', $o{suites_len} // length $suites) . $suites
		. pack('C', length $comp) . $comp;

	if (defined $o{ext}) {
		$body .= pack('n', $o{ext_len} // length $o{ext}) . $o{ext};
	}

	# one byte of the extensions length alone

	$body = substr($body, 0, -1) if $o{trim};

	my $len = length $body;
	my $hslen = $len + ($o{hs_len_add} // 0);

	my $hs = pack('C', 1) . substr(pack('N', $hslen), 1)
		. pack('n', $o{msg_seq} // 0)
		. "\0\0\0" . substr(pack('N', $hslen), 1) . $body;

	return pack('Cnn', 22, 0xfeff, 0) . pack('nN', 0, $o{seq} // 0)
		. pack('n', length($hs) + ($o{rec_len_add} // 0)) . $hs;
}

# one ClientHello in two fragments, each in a record of its own, both in
# one datagram

sub split_hello {
	my $hs = substr(hello(), 13);
	my $body = substr($hs, 12);
	my $len = length $body;
	my $half = int($len / 2);

	my $f1 = substr($hs, 0, 6) . "\0\0\0" . substr(pack('N', $half), 1)
		. substr($body, 0, $half);
	my $f2 = substr($hs, 0, 6) . substr(pack('N', $half), 1)
		. substr(pack('N', $len - $half), 1) . substr($body, $half);

	return pack('Cnn', 22, 0xfeff, 0) . pack('nN', 0, 0)
		. pack('n', length $f1) . $f1
		. pack('Cnn', 22, 0xfeff, 0) . pack('nN', 0, 1)
		. pack('n', length $f2) . $f2;
}

# garbage of several kinds, none of it a ClientHello

sub garbage {
	my ($n) = @_;

	my $kind = $n % 5;

	if ($kind == 0) {
		my $g = random(1 + int rand 200);
		substr($g, 0, 1) = "\x17" if ord($g) == 22;
		return $g;
	}

	return '' if $kind == 1;

	# a stray record of a later epoch

	return pack('Cnn', 23, 0xfefd, 1 + int rand 5) . pack('nN', 0, $n)
		. pack('n', 32) . random(32) if $kind == 2;

	# a ClientHello cut short

	my $h = hello();
	return substr($h, 0, 13 + int rand(length($h) - 14)) if $kind == 3;

	# a ClientHello with a broken length

	return hello(rec_len_add => 1 + int rand 50);
}

# a handshake up to the server's flight: the socket, a log mark, the time

sub handshake {
	my %h = (random => random(32));
	my $s = client($port);
	my $cookie = parse_hvr(exchange($s, hello(%h)))->{cookie};

	my $mark = log_mark($t);
	my $start = time();

	my @r = exchange_all($s, hello(%h, cookie => $cookie, msg_seq => 1,
		seq => 1), 0.3);
	is(msg_type($r[0]), 2, 'handshake: server flight');

	return ($s, $mark, $start);
}

# a datagram, and every reply within the time

sub exchange_all {
	my ($s, $data, $wait) = @_;

	$s->send($data);
	return drain($s, $wait);
}

sub drain {
	my ($s, $wait) = @_;

	my @r;
	my $sel = IO::Select->new($s);
	my $end = time() + $wait;

	while ((my $left = $end - time()) > 0) {
		last unless $sel->can_read($left);
		my $buf;
		$s->recv($buf, 65536);
		push @r, $buf if defined $buf;
	}

	return @r;
}

# a good client right after: handshake and echo

sub good {
	my ($after) = @_;

	my ($out, $rc) = dtls_client($t, { timeout => 20 }, @good,
		'-m', 'echo', '-n', 2, '-t', 5000);

	ok($out =~ /^recv be:hello-2$/m && $out =~ /^echo ok n=2$/m,
		"good client after $after") or diag($out);

	$good_runs++;
}

# the error log lines of the sessions from a port (since a mark)

sub session_log {
	my ($p, $mark) = @_;

	my $log = error_log($t, $mark);
	my %ids = map { $_ => 1 }
		$log =~ /\*(\d+) udp client 127\.0\.0\.1:$p connected/g;

	return join "\n", grep { /\*(\d+) / && $ids{$1} } split /\n/, $log;
}


###############################################################################
