#!/usr/bin/perl

# Tests of the test harness and tools themselves, without the DTLS module:
# plain UDP proxying to udp_echo, the client tools against it, nginx -t,
# reload, stop, and a failed start.

###############################################################################

use warnings;
use strict;

use Test::More;

use B qw/ svref_2object /;
use IO::Socket::IP;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::Hello;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/);

my $client = tool($t, 'dtls_client');
tool($t, 'udp_echo');

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

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1), 'echo:');
$t->run()->plan(27);

my $p = port(8980, udp => 1);
my $p6 = port(8982, udp => 1);

###############################################################################

# the harness

like($t->read_file('nginx.conf'), qr/listen\s+127\.0\.0\.1:$p udp/,
	'ports expanded');
like($t->read_file('nginx.conf'), qr/^error_log \S+error\.log debug;/m,
	'globals prepended');
ok(nginx_pid($t) && kill(0, nginx_pid($t)), 'nginx running');
my @workers = workers($t);
ok(@workers > 0, 'worker started');

is(udp_request($t, "127.0.0.1:$p", 'ping'), 'echo:ping', 'udp round trip');
is(udp_request($t, "[::1]:$p6", 'ping6'), 'echo:ping6', 'udp over ipv6');

# the tools against a plain UDP proxy to an echo backend

my $hello = client_hello(random => random(32));
my $r = exchange(client($p), $hello);
is($r, "echo:$hello", 'ClientHello: echoed with prefix');
isnt(msg_type($r), 3, 'ClientHello: the reply is not an hvr');

my $junk = random(100);
$r = exchange(client($p), $junk);
is(length($r // ''), 105, 'garbage: echoed with prefix');
is($r, "echo:$junk", 'garbage: echoed as sent');

my ($out, $rc);
my $start = time();
($out, $rc) = run_tool($t, 'dtls_client', '-c', "127.0.0.1:$p", '-i', 'id',
	'-k', '00112233', '-m', 'handshake', '-t', '1500');
like($out, qr/^handshake failed: timeout$/m, 'handshake: no dtls server');
is($rc, 1, 'handshake: exit code');
ok(time() - $start < 10, 'handshake: bounded by -t');
unlike($out, qr/00112233/, 'key not printed');

($out, $rc) = run_tool($t, { timeout => 1 }, '/bin/sleep', '5');
is($rc, -1, 'run_tool: timeout kills');

# the error log

ok(wait_log($t, qr/udp client 127\.0\.0\.1:\d+ connected to/, 5),
	'error log: session logged');
is(log_alerts($t), '', 'error log: no alerts');

# reload

ok(reload_wait($t), 'reload: new worker');
is(udp_request($t, "127.0.0.1:$p", 'again'), 'echo:again', 'after reload');

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

($rc, $out) = test_config($t, 'broken.conf');
isnt($rc, 0, 'nginx -t: fails');
like($out, qr/unknown directive "bogus_directive" in \S+broken\.conf:$line/,
	'nginx -t: file and line');

($rc, $out) = test_config($t);
is($rc, 0, 'nginx -t: good configuration');

# stop

my $pid = nginx_pid($t);
is(stop_status($t), 0, 'stop: exit status 0');
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

# Test::Nginx's methods are nginx-tests' (lib/Test/Nginx.pm there), so
# that a test of ours would also run under that harness; the rest is
# Test::Nginx::DTLS's

my %nginx_tests = map { $_ => 1 } qw/ new DESTROY has has_module has_feature
	has_version has_daemon try_run plan todo_alerts run args port
	dump_config waitforfile waitforsocket reload stop stop_daemons read_file
	write_file write_file_expand run_daemon testdir test_globals
	test_globals_http test_globals_stream log_core log_in log_out http
	http_get http_head http_start http_end http_content http_gzip_request
	http_gzip_like /;

# the subs defined in Test::Nginx (not imported, not the constants of
# Socket and POSIX, which have a prototype), but for the private (_name)

my @ours = grep {
	no strict 'refs';
	my $cv = defined &{"Test::Nginx::$_"} && \&{"Test::Nginx::$_"};
	$cv && !/^_/ && !defined prototype($cv)
		&& svref_2object($cv)->GV->STASH->NAME eq 'Test::Nginx'
		&& !$nginx_tests{$_}
} sort keys %Test::Nginx::;

is("@ours", '', "Test::Nginx: only nginx-tests' names");

###############################################################################
