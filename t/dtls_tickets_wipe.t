#!/usr/bin/perl

# No copy of a session ticket key of a dtls_session_ticket_key file goes
# back to the allocator unwiped: nginx runs under t/tools/freescan.so
# (see t/dtls_psk_wipe.t), which searches every block given back by
# free() or moved by realloc() for the files' text and the keys in them,
# over a start with an 80-byte and a 48-byte key, sessions that make and
# resume tickets, a reload to another key, and a stop.  A canary among
# nginx.conf's arguments, which nginx frees as they are, is the control
# that must be found, in the master and in a worker.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::Freescan;
use Test::DTLS::Hello qw/ random /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

freescan_needs($t);

tool($t, 'dtls_client');

my $d = $t->testdir();

my $psk = unpack('H*', random(16));
$t->write_file('psk', "dev-1:$psk\n");

my %tk = (k80 => random(80), k48 => random(48), next => random(80));

$t->write_file($_, $tk{$_}) for keys %tk;
chmod 0600, map { "$d/$_" } 'psk', keys %tk;

my $canary = 'canary-' . unpack('H*', random(12));

# "LABEL HEX" lines for the shim: each file, and its HMAC and AES keys

my $patterns = "canary " . unpack('H*', $canary) . "\n";

for my $name (keys %tk) {
	my $k = $tk{$name};
	my ($hmac, $aes) = length $k == 80
		? (substr($k, 16, 32), substr($k, 48, 32))
		: (substr($k, 32, 16), substr($k, 16, 16));

	$patterns .= "file:$name " . unpack('H*', $k) . "\n"
		. "hmac:$name " . unpack('H*', $hmac) . "\n"
		. "aes:$name " . unpack('H*', $aes) . "\n";
}

$t->write_file('patterns', $patterns);

sub conf {
	my ($keys) = @_;

	$t->write_file_expand('nginx.conf', <<"EOF");

events {
}

stream {
    server {
        listen                  127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                    on;
        dtls_psk_file           psk;
        dtls_psk_identity_hint  "$canary";
        $keys
        proxy_pass              127.0.0.1:%%PORT_8981_UDP%%;
        proxy_timeout           3s;
    }
}

EOF
}

conf("dtls_session_ticket_key k80;\n"
	. "        dtls_session_ticket_key k48;");

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1));

my $master = freescan_run($t);
$t->plan(9);


###############################################################################

# sessions that make a ticket and resume it (dtls_client -R)

sub sessions {
	my ($out) = run_tool($t, { timeout => 20 }, 'dtls_client',
		'-c', '127.0.0.1:' . port(8980, udp => 1), '-i', 'dev-1',
		'-k', $psk, '-m', 'sequential', '-n', 3, '-R');
	return $out;
}

like(sessions(), qr/^summary ok=3 failed=0 reused=2$/m,
	'two keys: tickets made and resumed');

conf('dtls_session_ticket_key next;');

ok(reload_done($t), 'reload to another key');

like(sessions(), qr/^summary ok=3 failed=0 reused=2$/m,
	'another key: tickets made and resumed');

is(stop_status($t), 0, 'nginx exits');

###############################################################################

my $scan = freescan_log($t);
my %exited = %{$scan->{exited}};

ok(defined $exited{$master} && keys %exited >= 3,
	'shim in the master and both workers');

# the controls: the canary found in the master and in a worker

canaries_ok($scan, $master);

is(found($scan, qr/^file:/), '', 'no ticket key file text freed unwiped');
is(found($scan, qr/^(hmac|aes):/), '', 'no ticket key freed unwiped');

###############################################################################
