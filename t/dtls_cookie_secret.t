#!/usr/bin/perl

# Cookie lifetime and a cookie secret shared between nginx instances:
# a cookie expires after two lifetimes at most; instances that read the
# same dtls_cookie_secret accept each other's cookies, others do not; and
# dtls_cookie off, which skips the exchange, with the warning it earns.

###############################################################################

use warnings;
use strict;

use Test::More;

use Time::HiRes qw/ sleep /;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::Hello;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

plan(tests => 16);

my $secret = random(48);
my $psk = 'dev-1:' . hexkey() . "\n";

# one nginx instance on the test's port, with or without the secret file

sub instance {
	my ($directives, %files) = @_;

	my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

	my %all = (psk => $psk, %files);
	psk_file($t, $_, $all{$_}) for keys %all;

	$t->write_file_expand('nginx.conf', <<"EOF");

events {
}

stream {
    server {
        listen                  127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                    on;
        dtls_psk_file           psk;
        dtls_handshake_timeout  1s;
        $directives
        return                  "ok";
    }
}

EOF

	return $t;
}

my $port = port(8980, udp => 1);

###############################################################################

# a cookie is good for its lifetime, and gone after two

my $t = instance('dtls_cookie_lifetime 2s;');
$t->run();

my $s = client($port);
my %hello = (random => random(32));
my $cookie = parse_hvr(exchange($s, client_hello(%hello)))->{cookie};

is(msg_type(exchange($s, client_hello(%hello, cookie => $cookie,
	msg_seq => 1))), 2, 'fresh cookie accepted');

$s = client($port);
$cookie = parse_hvr(exchange($s, client_hello(%hello)))->{cookie};

sleep 4.5;

my $mark = log_mark($t);

is(msg_type(exchange($s, client_hello(%hello, cookie => $cookie,
	msg_seq => 1))), 3, 'cookie two lifetimes old refused');
ok(wait_log($t, qr/invalid or expired cookie/, 3, $mark),
	'expired cookie logged');

$t->stop();

# instances with the same dtls_cookie_secret accept each other's cookies

my $a = instance('dtls_cookie_secret secret;', secret => $secret);
$a->run();

$s = client($port);
$cookie = parse_hvr(exchange($s, client_hello(%hello)))->{cookie};
is(length($cookie), 32, 'cookie from the first instance');

$a->stop();

my $b = instance('dtls_cookie_secret secret;', secret => $secret);
$b->run();

is(msg_type(exchange($s, client_hello(%hello, cookie => $cookie,
	msg_seq => 1))), 2, 'second instance with the same secret accepts it');

$b->stop();

# and those without it, or with another, do not

my $c = instance('');
$c->run();

$s = client($port);
is(msg_type(exchange($s, client_hello(%hello, cookie => $cookie,
	msg_seq => 1))), 3, 'instance without the secret refuses it');

$c->stop();

my $d = instance('dtls_cookie_secret secret;', secret => random(32));
$d->run();

$s = client($port);
is(msg_type(exchange($s, client_hello(%hello, cookie => $cookie,
	msg_seq => 1))), 3, 'instance with another secret refuses it');

$d->stop();

# without the exchange the first ClientHello starts the handshake

my $f = instance('dtls_cookie off;');
$f->run();

$s = client($port);
is(msg_type(exchange($s, client_hello(random => random(32)))), 2,
	'dtls_cookie off: ServerHello without a cookie');

my ($out) = dtls_client($f, '-c', "127.0.0.1:$port",
	'-i', 'dev-1', '-k', ($psk =~ /:(\w+)/)[0], '-m', 'send-only', '-s', 'x');
like($out, qr/^recv ok$/m, 'dtls_cookie off: a client gets through');
unlike(error_log($f), qr/HelloVerifyRequest sent/,
	'dtls_cookie off: no HelloVerifyRequest');

$f->stop();

# nginx -t

my $e = instance('dtls_cookie off;');
my ($rc);
($rc, $out) = test_config($e);
like($out, qr/\[warn\] "dtls_cookie off": the server in \S+:\d+ starts a /,
	'dtls_cookie off: warning');

$e = instance('dtls_cookie_secret short;', short => random(31));
($rc, $out) = test_config($e);
isnt($rc, 0, 'short secret: fails');
like($out, qr/"\S+\/short" has 31 bytes, at least 32 are needed in \S+:\d+/,
	'short secret: message');

$e = instance('dtls_cookie_secret missing;');
($rc, $out) = test_config($e);
like($out, qr/cannot open cookie secret file "\S+\/missing" \(2: No such /,
	'missing secret file');

$e = instance('dtls_cookie_lifetime 0s;');
($rc, $out) = test_config($e);
like($out, qr/"dtls_cookie_lifetime" directive must be at least 1s in /,
	'lifetime 0');

$e = instance('dtls_cookie_secret secret;', secret => $secret);
chmod 0644, $e->testdir() . '/secret';
($rc, $out) = test_config($e);
like($out, qr/\[warn\] cookie secret file "\S+\/secret" is readable by others/,
	'secret readable by others: warning');

###############################################################################
