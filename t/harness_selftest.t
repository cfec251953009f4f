#!/usr/bin/perl

# Tests of the test harness and tools themselves, without the DTLS module:
# plain UDP proxying to udp_echo, the client tools against it, nginx -t,
# reload, stop, and a failed start.

###############################################################################

use warnings;
use strict;

use Test::More;

use IO::Socket::IP;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/);

my $client = $t->tool('dtls_client');
$t->tool('udp_echo');

$t->write_file_expand('nginx.conf', <<'EOF');

events {
}

stream {
    proxy_responses  1;
    proxy_timeout    2s;

    server {
        listen      127.0.0.1:%%PORT_8980_UDP%% udp;
        proxy_pass  127.0.0.1:%%PORT_8981_UDP%%;
    }

    server {
        listen      [::1]:%%PORT_8982_UDP%% udp;
        proxy_pass  127.0.0.1:%%PORT_8981_UDP%%;
    }
}

EOF

$t->udp_echo('127.0.0.1:' . port(8981, udp => 1), 'echo:');
$t->run()->plan(26);

my $p = port(8980, udp => 1);
my $p6 = port(8982, udp => 1);

###############################################################################

# the harness

like($t->read_file('nginx.conf'), qr/listen\s+127\.0\.0\.1:$p udp/,
	'ports expanded');
like($t->read_file('nginx.conf'), qr/^error_log \S+error\.log debug;/m,
	'globals prepended');
ok($t->pid && kill(0, $t->pid), 'nginx running');
my @workers = $t->workers();
ok(@workers > 0, 'worker started');

is($t->udp_request("127.0.0.1:$p", 'ping'), 'echo:ping', 'udp round trip');
is($t->udp_request("[::1]:$p6", 'ping6'), 'echo:ping6', 'udp over ipv6');

# the tools against a plain UDP proxy to an echo backend

my ($out, $rc) = $t->run_tool('dtls_client', '-c', "127.0.0.1:$p",
	'-m', 'nocookie', '-t', '2000');
like($out, qr/^reply len=\d+$/m, 'nocookie: reply is not an hvr');
is($rc, 1, 'nocookie: exit code');

($out, $rc) = $t->run_tool('dtls_client', '-c', "127.0.0.1:$p",
	'-m', 'garbage', '-s', '100', '-t', '1000');
like($out, qr/^reply len=105$/m, 'garbage: echoed with prefix');
is($rc, 1, 'garbage: exit code');

my $start = time();
($out, $rc) = $t->run_tool('dtls_client', '-c', "127.0.0.1:$p", '-i', 'id',
	'-k', '00112233', '-m', 'handshake', '-t', '1500');
like($out, qr/^handshake failed: timeout$/m, 'handshake: no dtls server');
is($rc, 1, 'handshake: exit code');
ok(time() - $start < 10, 'handshake: bounded by -t');
unlike($out, qr/00112233/, 'key not printed');

($out, $rc) = $t->run_tool({ timeout => 1 }, '/bin/sleep', '5');
is($rc, -1, 'run_tool: timeout kills');

# the error log

ok($t->wait_log(qr/udp client 127\.0\.0\.1:\d+ connected to/, 5),
	'error log: session logged');
is($t->log_alerts(), '', 'error log: no alerts');

# reload

ok($t->reload(), 'reload: new worker');
is($t->udp_request("127.0.0.1:$p", 'again'), 'echo:again', 'after reload');

# nginx -t on a broken configuration reports file and line

$t->write_file_expand('broken.conf', <<'EOF');
%%TEST_GLOBALS%%
events {
}

stream {
    server {
        listen  127.0.0.1:%%PORT_8980_UDP%% udp;
        bogus_directive  on;
    }
}
EOF

my @lines = split /\n/, $t->read_file('broken.conf');
my ($line) = grep { $lines[$_ - 1] =~ /bogus_directive/ } 1 .. @lines;

($rc, $out) = $t->test_config('broken.conf');
isnt($rc, 0, 'nginx -t: fails');
like($out, qr/unknown directive "bogus_directive" in \S+broken\.conf:$line/,
	'nginx -t: file and line');

($rc, $out) = $t->test_config();
is($rc, 0, 'nginx -t: good configuration');

# stop

my $pid = $t->pid;
is($t->stop(), 0, 'stop: exit status 0');
ok(!kill(0, $pid), 'stop: master gone');

# a start that fails (the port is taken) dies with the error log

my $busy = IO::Socket::IP->new(LocalHost => '127.0.0.1', LocalPort => 0,
	Proto => 'udp') or die "Can't create UDP socket: $@\n";

my $t2 = Test::Nginx->new();

$t2->write_file_expand('nginx.conf', <<"EOF");

events {
}

stream {
    server {
        listen      127.0.0.1:@{[ $busy->sockport() ]} udp;
        proxy_pass  127.0.0.1:1;
    }
}

EOF

# nginx exits from main() on a failed start without freeing its first
# pool: not a leak for make test-asan to report

{
	local $ENV{ASAN_OPTIONS} = ($ENV{ASAN_OPTIONS} // '') . ':detect_leaks=0';
	eval { $t2->run(); };
}

like($@, qr/Can't start nginx/, 'failed start: dies');
like($@, qr/bind\(\) to 127\.0\.0\.1:\d+ failed/, 'failed start: error log');

###############################################################################
