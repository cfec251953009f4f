#!/usr/bin/perl

# Two DTLS instances behind a real UDP load balancer, as docs/scaling.md
# deploys them: a third nginx whose stream proxy hashes each client's
# address and port (hash $remote_addr$remote_port consistent) over two
# nginx instances with this module, which share the cookie secret and the
# session ticket keys.  The configurations are the document's own, taken
# from it and put on test ports.  Shown: a cookie minted by one instance is
# accepted by the other (the two also share one address and port through
# a reuseport group, as a balancer that keeps the server's address does);
# a ticket issued by one resumes on the other; 500 sessions spread over
# both, none broken; and when one instance stops, the balancer moves its
# clients to the other, where their tickets resume, with no operator
# action.

###############################################################################

use warnings;
use strict;

use Test::More;

use Time::HiRes qw/ time /;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::Hello;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $doc = Test::Nginx->new()->read_file("$FindBin::Bin/../docs/scaling.md");

my ($lb_conf) = grep { /hash\s+\$remote_addr\$remote_port consistent/ }
	$doc =~ /^```nginx\n(.*?)^```/msg;
my ($node_conf) = grep { /dtls_session_ticket_key/ }
	$doc =~ /^```nginx-conf\n(.*?)^```/msg;

plan(skip_all => 'no examples in docs/scaling.md')
	unless $lb_conf && $node_conf;

my ($openssl) = grep { -x } map { "$_/openssl" } split /:/, $ENV{PATH};
plan(skip_all => 'no openssl') unless $openssl;

my $key = unpack('H*', random(16));
my %files = (
	'dtls.psk' => "dev-1:$key\n",
	'cookie.secret' => random(48),
	'ticket-current.key' => random(80),
	'ticket-previous.key' => random(80),
);

my $events = "events {\n    worker_connections  4096;\n}\n\nworker_shutdown_timeout  1s;\n"
	. "worker_rlimit_nofile  16384;\n\n";

# the instances: the document's server on a port each, and both on one
# more, shared (reuseport across the two processes)

my @node;

for my $i (0, 1) {
	my $n = Test::Nginx->new()->has(qw/stream udp debug/)->has_module('dtls');
	my $d = $n->testdir();

	for my $f (keys %files) {
		$n->write_file($f, $files{$f});
		chmod 0600, "$d/$f";
	}

	my $conf = $node_conf;
	my $port = 8981 + $i;

	$conf =~ s!/etc/nginx/(?:dtls/)?([\w.-]+)!%%TESTDIR%%/$1!g;
	$conf =~ s!^(\s+)listen(\s+)5684 udp reuseport;!$1listen${2}127.0.0.1:%%PORT_${port}_UDP%% udp reuseport;\n$1listen${2}127.0.0.1:%%PORT_8985_UDP%% udp reuseport;!m
		or die "no listen in the example\n";
	$conf =~ s/127\.0\.0\.1:5683/127.0.0.1:%%PORT_8990_UDP%%/;
	$conf =~ s!^stream \{!stream {\n    log_format  dtls  '\$dtls_session_reused \$remote_port';\n    access_log  %%TESTDIR%%/access.log  dtls;\n!m;

	$n->write_file_expand('nginx.conf', $events . $conf);
	push @node, $n;
}

my ($na, $nb) = @node;

# the balancer, with the echo backend the instances proxy to

my $lb = Test::Nginx->new();

$lb_conf =~ s/10\.0\.0\.11:5684/127.0.0.1:%%PORT_8981_UDP%%/;
$lb_conf =~ s/10\.0\.0\.12:5684/127.0.0.1:%%PORT_8982_UDP%%/;
# the example's proxy_timeout, shorter: the failover waits for it

my $lb_timeout = 5;
$lb_conf =~ s/proxy_timeout(\s+)\S+;/proxy_timeout$1${lb_timeout}s;/
	or die "no proxy_timeout in the balancer example\n";
$lb_conf =~ s/listen(\s+)5684 udp;/listen${1}127.0.0.1:%%PORT_8980_UDP%% udp;/
	or die "no listen in the balancer example\n";

$lb->write_file_expand('nginx.conf', $events . $lb_conf);

udp_echo($lb, '127.0.0.1:' . port(8990, udp => 1));
$lb->run();
$na->run();
$nb->run();

$lb->plan(20);

my $vip = port(8980, udp => 1);

###############################################################################

# a cookie minted by one instance is accepted by the other: a ClientHello
# to the port both listen on reaches one of them (the kernel's hash of the
# client's address and port), which answers with a cookie; that one stops,
# and the client's second ClientHello, with the cookie, reaches the other

my $s = client(port(8985, udp => 1));
my %hello = (random => random(32));
my $marks = [ map { log_mark($_) } @node ];

my $hvr = parse_hvr(exchange($s, client_hello(%hello)));
ok($hvr && length $hvr->{cookie} == 32, 'shared port: cookie');

# the instance logs the HelloVerifyRequest once it is sent

my $minter;
wait_for($node[0], sub {
	($minter) = grep {
		error_log($node[$_], $marks->[$_]) =~ /HelloVerifyRequest sent/
	} 0, 1;
	defined $minter;
}, 3);
ok(defined $minter, 'shared port: the instance that minted it');

$minter //= 0;
my $other = $node[1 - $minter];
$node[$minter]->stop();

my $mark = log_mark($other);

is(msg_type(exchange($s, client_hello(%hello, cookie => $hvr->{cookie},
	msg_seq => 1))), 2, 'the other instance accepts the cookie');
unlike(error_log($other, $mark), qr/invalid or expired cookie/,
	'the other instance: no cookie refused');

$node[$minter]->run();

###############################################################################

# 500 sessions through the balancer, held, then closed: each resumes the
# first session that completed, on whichever instance the balancer chose

my @access = map { scalar access($_) } @node;

my ($out) = run_tool($lb, { timeout => 60 }, 'dtls_load', '-c',
	"127.0.0.1:$vip", '-m', 'hold', '-N', 500, '-n', 32, '-d', 1, '-r',
	'-i', 'dev-1', '-k', $key, '-t', 5000);

my ($ready) = $out =~ /^(\{"mode":"hold","ready".*)$/m;
my ($done) = $out =~ /^(\{"mode":"hold","done".*)$/m;

like($ready // '', qr/"sessions":500,/, '500 sessions established')
	or diag($out);
like($done // '', qr/"lost":0,/, 'none of them lost while held');
like($done // '', qr/"failures_total":0,/, 'no failure');

my ($resumed) = ($done // '') =~ /"resumed":(\d+)/;
ok(($resumed // 0) >= 400, 'most of them resumed')
	or diag("resumed: " . ($resumed // 'none'));

wait_for($lb, sub { access($na) + access($nb) - $access[0] - $access[1]
	>= 500 }, 15);

my @lines = map { [ (split /\n/, $node[$_]->read_file('access.log'))
	[$access[$_] .. access($node[$_]) - 1] ] } 0, 1;

is(@{$lines[0]} + @{$lines[1]}, 500, '500 sessions ended, logged');
ok(@{$lines[0]} >= 100 && @{$lines[1]} >= 100, 'spread over both instances')
	or diag(scalar @{$lines[0]} . ' and ' . scalar @{$lines[1]});
ok((grep { /^r / } @{$lines[0]}) >= 50 && (grep { /^r / } @{$lines[1]}) >= 50,
	'resumed on both instances');

###############################################################################

# a ticket issued by one instance resumes on the other: dtls_client's
# sessions, each from a port of its own, resume the first

@access = map { scalar access($_) } @node;

($out) = run_tool($lb, { timeout => 60 }, 'dtls_client', '-c',
	"127.0.0.1:$vip", '-i', 'dev-1', '-k', $key, '-m', 'sequential',
	'-n', 20, '-R');
like($out, qr/^summary ok=20 failed=0 reused=19$/m,
	'20 sessions, 19 resumed') or diag($out);

wait_for($lb, sub { access($na) + access($nb) - $access[0] - $access[1]
	>= 20 }, 5);

@lines = map { [ (split /\n/, $node[$_]->read_file('access.log'))
	[$access[$_] .. access($node[$_]) - 1] ] } 0, 1;

my ($first) = grep { grep { /^\. / } @{$lines[$_]} } 0, 1;
ok(defined $first, 'one full handshake');
ok(defined $first && (grep { /^r / } @{$lines[1 - $first]}),
	'its ticket resumed on the other instance');

###############################################################################

# an instance stops: the balancer takes its clients to the other, which
# resumes their tickets

# a device with a port of its own that the balancer hashes to the second
# instance, and a ticket from it

my ($ticket, $dev);

for (1 .. 30) {
	my $p = 40000 + int rand 20000;
	next unless Test::Nginx::DTLS::port_free($p, '127.0.0.1');

	my $n = access($nb);
	my $r = s_client('-bind', "127.0.0.1:$p",
		'-sess_out', $lb->testdir() . '/ticket');

	if ($r eq 'New' && wait_for($lb, sub { access($nb) > $n }, 2)) {
		($ticket, $dev) = ($lb->testdir() . '/ticket', $p);
		last;
	}
}

ok($ticket, 'a ticket from the second instance');

$nb->stop();

# The device handshakes again, from its port, resuming its ticket, once a
# second until it gets through.  nginx's UDP proxy keeps the device's
# session with the stopped instance: a refused datagram does not end it
# (nginx sends the device an empty datagram, which OpenSSL's client takes
# for an end), a failed send does, or proxy_timeout; then the instance is
# marked failed (max_fails 1, fail_timeout 10s, the defaults) and the
# device's next handshake goes to the other instance.

my $lb_mark = log_mark($lb);
my $t_stop = time();
my ($moved, $tries);

for $tries (1 .. 30) {
	my $n = access($na);

	if (s_client('-bind', "127.0.0.1:" . ($dev // 0),
			'-sess_in', $ticket // '/nonexistent') eq 'Reused'
		&& wait_for($lb, sub { access($na) > $n }, 3)
		&& (split /\n/, $na->read_file('access.log'))[-1] =~ /^r /)
	{
		$moved = time() - $t_stop;
		last;
	}

	sleep 1;
}

ok(defined $moved, 'the device moved to the other, its ticket resumed');
# after proxy_timeout; or, when fail_timeout (10s) ends meanwhile and the
# device's next session tries the stopped instance again, after another

ok(defined $moved && $moved < 2 * $lb_timeout + 10 + 5,
	'within the balancer\'s timeouts, with no operator action')
	or diag('moved after ' . ($moved // 'never'));
diag(sprintf 'moved after %.1f s', $moved)
	if defined $moved && $ENV{TEST_NGINX_VERBOSE};
like(error_log($lb, $lb_mark), qr/upstream server temporarily disabled/,
	'the balancer took the stopped instance out');

($out) = run_tool($lb, { timeout => 60 }, 'dtls_client', '-c',
	"127.0.0.1:$vip", '-i', 'dev-1', '-k', $key, '-m', 'sequential',
	'-n', 10, '-R', '-t', 15000);
like($out, qr/^summary ok=10 failed=0 reused=9$/m,
	'new clients: all on the first instance') or diag($out);

###############################################################################

$na->stop();
$lb->stop();

is(join("\n", grep { $_ ne '' } map { log_alerts($_) } $na, $nb, $lb), '',
	'no alerts');

###############################################################################

sub access {
	my ($n) = @_;
	my @l = split /\n/, $n->read_file('access.log');
	return scalar @l;
}

sub s_client {
	my (@args) = @_;

	my ($out) = run_tool($lb, { stderr => 1, timeout => 15 }, $openssl,
		's_client', '-dtls1_2', '-connect', "127.0.0.1:$vip",
		'-psk_identity', 'dev-1', '-psk', $key,
		'-cipher', 'PSK-AES128-GCM-SHA256', @args);

	return $out if $out =~ /alert|handshake failure/;
	return $1 if $out =~ /^(New|Reused), /m;
	return $out;
}

###############################################################################
