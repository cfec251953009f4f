#!/usr/bin/perl

# Datagrams from sources no client can have (port 0, the unspecified
# address, multicast, the limited broadcast) are dropped before nginx
# reads them: the kernel filter on a dtls listening socket.  The datagrams
# are made here with raw sockets (root only); a plain UDP server of the
# same nginx shows that the kernel delivers each of them to a socket
# without the filter, and a reload that turns dtls off removes it.

###############################################################################

use warnings;
use strict;

use Test::More;

use IO::Select;
use IO::Socket::IP;
use Socket qw/ PF_INET PF_INET6 SOCK_RAW /;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::Hello qw/ :DEFAULT send_udp4 send_udp6 /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

socket(my $raw4, PF_INET, SOCK_RAW, 255)
	or plan(skip_all => "no raw socket (root only): $!");

my $raw6;
my $ipv6 = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
	Proto => 'udp') && socket($raw6, PF_INET6, SOCK_RAW, 255);

my $key = hexkey();
psk_file($t, 'psk', "dev:$key\n");

my $conf = <<'EOF';

events {
}

stream {
    server {
        listen          127.0.0.1:%%PORT_8980_UDP%% udp;
        %%DTLS6%%
        dtls            on;
        dtls_psk_file   psk;
        return          "ok";
    }

    server {
        listen          127.0.0.1:%%PORT_8981_UDP%% udp;
        %%PLAIN6%%
        return          "plain";
    }
}

EOF

my $dtls6 = $ipv6 ? 'listen          [::1]:%%PORT_8980_UDP%% udp;' : '';
my $plain6 = $ipv6 ? 'listen          [::1]:%%PORT_8981_UDP%% udp;' : '';

(my $with_dtls = $conf) =~ s/%%DTLS6%%/$dtls6/;
$with_dtls =~ s/%%PLAIN6%%/$plain6/;

$t->write_file_expand('nginx.conf', $with_dtls);
$t->run()->plan(13);

my $dtls = port(8980, udp => 1);
my $plain = port(8981, udp => 1);

###############################################################################

# Each source is sent to the plain server first: where the kernel itself
# drops it (IPv6 multicast sources) there is nothing for the filter to do.
# The raw socket fills in a zero IPv4 source (raw(7)), so 0.0.0.0 cannot
# be sent from here, and Linux drops it as a martian from outside.

my @bad = (
	[ 4, 'port 0', '127.0.0.1', 0 ],
	[ 4, 'multicast', '224.0.0.1', 40000 ],
	[ 4, 'limited broadcast', '255.255.255.255', 40000 ],
	[ 6, 'port 0', '::1', 0 ],
	[ 6, 'unspecified', '::', 40000 ],
	[ 6, 'multicast', 'ff02::1', 40000 ],
);

my $hello = client_hello(random => random(32));

for my $b (@bad) {
	my ($v, $name, $src, $sport) = @$b;

	SKIP: {
	skip "no ::1 or no raw IPv6 socket", 1 if $v == 6 && !$ipv6;

	my $host = $v == 4 ? '127.0.0.1' : '[::1]';
	my $send = $v == 4 ? \&send4 : \&send6;

	my $mark = log_mark($t);
	$send->($src, $sport, $plain, $hello);

	skip "ipv$v $name: dropped by the kernel before any socket", 1
		unless read_on("$host:$plain", $mark);

	$mark = log_mark($t);
	$send->($src, $sport, $dtls, $hello);
	ok(!read_on("$host:$dtls", $mark), "ipv$v $name: dropped unread");
	}
}

# a raw datagram from a real source is answered: the test can see one

my $s = IO::Socket::IP->new(Proto => 'udp', LocalAddr => '127.0.0.1:0')
	or die "Can't create UDP socket: $!\n";

send4('127.0.0.1', $s->sockport(), $dtls, $hello);
ok(defined reply($s), 'ipv4 valid source: HelloVerifyRequest');

SKIP: {
skip 'no ::1 or no raw IPv6 socket', 1 unless $ipv6;

my $s6 = IO::Socket::IP->new(Proto => 'udp', LocalAddr => '[::1]:0')
	or die "Can't create UDP socket: $!\n";

send6('::1', $s6->sockport(), $dtls, $hello);
ok(defined reply($s6), 'ipv6 valid source: HelloVerifyRequest');
}

# a session from a real client is unaffected

my ($out, $rc) = dtls_client($t, '-m', 'send-only', '-s', 'x',
	'-i', 'dev', '-k', $key, '-c', "127.0.0.1:$dtls");

like($out, qr/^recv ok$/m, 'client session');

# a reload without dtls on that socket takes the filter away

(my $without = $conf) =~ s/%%DTLS6%%\n\s+dtls .*\n\s+dtls_psk_file .*\n//;
$without =~ s/%%PLAIN6%%//;
$t->write_file_expand('nginx.conf', $without);

my $mark = log_mark($t);
reload_wait($t);
ok(wait_log($t, qr/worker process \d+ exited/, 10, $mark),
	'reloaded, the old worker gone');

$mark = log_mark($t);
send4('127.0.0.1', 0, $dtls, $hello);
ok(read_on("127.0.0.1:$dtls", $mark), 'no dtls after reload: read');

$mark = log_mark($t);
send4('127.0.0.1', $s->sockport(), $dtls, 'x');
is(reply($s), 'ok', 'no dtls after reload: plain reply');

# plain replies ("returning text") to port 0 or broadcast fail: nginx's own
# [alert], from the servers without dtls

is(join("\n", grep { !/while returning text/ } split /\n/, log_alerts($t)),
	'', 'no alerts');

###############################################################################


# did nginx read from this listening socket since the mark?

sub read_on {
	my ($addr, $mark) = @_;

	my $re = qr/recvmsg on \Q$addr\E,/;
	wait_log($t, $re, 0.5, $mark);
	return error_log($t, $mark) =~ $re;
}

sub reply {
	my ($s) = @_;

	return undef unless IO::Select->new($s)->can_read(2);

	my $data;
	$s->recv($data, 65536);
	return $data;
}

sub send4 {
	send_udp4($raw4, @_) or die "raw send: $!\n";
}

sub send6 {
	send_udp6($raw6, @_) or die "raw send: $!\n";
}

###############################################################################
