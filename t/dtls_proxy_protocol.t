#!/usr/bin/perl

# dtls_proxy_protocol: every datagram nginx sends to the upstream starts
# with a PROXY protocol version 2 header, parsed here by two parsers we did
# not write, each a UDP backend that answers every datagram with a line
# saying what it parsed:
#
#   go    t/interop/proxyproto/main.go, github.com/pires/go-proxyproto
#         (Debian's golang-github-pires-go-proxyproto-dev) and its
#         tlvparse package, built into build/tools/pp_backend_go;
#   node  t/interop/proxyproto-node/backend.js, npm's proxy-protocol-js
#         (addresses; the TLVs split by the script), installed into
#         build/interop-proxyproto-node by scripts/interop-deps.sh.
#
# Each line is compared with one made here from the specification: the
# header's size, the client's and the server's addresses and ports (the
# client's port from the access log), every TLV in order, its value.
# Over IPv4 and IPv6, for each parser: PSK sessions (with a 128-byte
# identity and SNI too), a verified client certificate (CN, SNI), an
# unverified one and none (optional_no_ca), a resumed certificate session,
# a renewal; PSK and certificate sessions of dtls_session_zone continued
# after proxy_timeout; the payload bound of proxy_buffer_size less the header;
# $bytes_received without the headers; routing by $dtls_psk_identity and
# $dtls_client_s_dn; nginx -t refusing proxy_protocol with it; and at the
# end each parser's count: every datagram it got parsed.

###############################################################################

use warnings;
use strict;

use Test::More;

use IO::Socket::IP;
use POSIX qw/ WNOHANG /;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS qw/ :DEFAULT which /;
use Test::DTLS::PKI;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, qw/ dtls_client udp_echo /);

my $go = "$Test::Nginx::REPO/build/tools/pp_backend_go";
my $node = which('node');
my $modules = "$Test::Nginx::REPO/build/interop-proxyproto-node/node_modules";

plan(skip_all => "no $go (scripts/interop-deps.sh pp_go; needs go and "
	. "golang-github-pires-go-proxyproto-dev)") unless -x $go;
plan(skip_all => 'no node') unless $node;
plan(skip_all => "no $modules/proxy-protocol-js "
	. "(scripts/interop-deps.sh pp_node)")
	unless -f "$modules/proxy-protocol-js/package.json";

diag("$go is older than t/interop/proxyproto/main.go: "
	. "run scripts/interop-deps.sh pp_go")
	if -M $go > -M "$FindBin::Bin/interop/proxyproto/main.go";

my $v6 = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
	Proto => 'udp');

my $d = $t->testdir();
my $pki = Test::DTLS::PKI->new("$d/pki");

my $key = hexkey();
my $key2 = hexkey(32);

# the longest identity a key file may hold

my $long = 'urn:dev:' . join '', map { ('a' .. 'z', 0 .. 9)[$_ % 36] }
	1 .. 120;

die "identity of " . length($long) . " bytes\n" unless length $long == 128;

psk_file($t, 'psk', "dev-1:$key\ndev-2:$key\n$long:$key2\n");

my %port = (go => port(8990, udp => 1), node => port(8991, udp => 1));
my @parsers = qw/ go node /;
my @families = $v6 ? (4, 6) : (4);

my $client_dn = $pki->info('client')->{subject};
my $client_int_dn = $pki->info('client-int')->{subject};

# a server for each parser and family, of each kind; the upstream on
# 127.0.0.1 either way

my %listen;
my $servers = '';
my $n = 8900;

for my $p (@parsers) {
	for my $f (@families) {
		for my $kind (qw/ psk cert nca small zone zonecert /) {
			my $port = port($n++, udp => 1);
			my $host = $f == 4 ? '127.0.0.1' : '[::1]';

			$listen{$p}{$f}{$kind} = { host => $host, port => $port };

			$servers .= <<"EOF";
    server {
        listen               $host:$port udp;
        dtls                 on;
        dtls_proxy_protocol  on;
EOF

			$servers .= {
				psk => "        dtls_psk_file        psk;\n",
				small => "        dtls_psk_file        psk;\n"
					. "        proxy_buffer_size    1k;\n",
				cert => "        dtls_certificate     "
					. $pki->path('server-ec.crt') . ";\n"
					. "        dtls_certificate_key "
					. $pki->path('server-ec.key') . ";\n",
				nca => "        dtls_certificate     "
					. $pki->path('server-ec.crt') . ";\n"
					. "        dtls_certificate_key "
					. $pki->path('server-ec.key') . ";\n"
					. "        dtls_verify_client   optional_no_ca;\n",
				zone => "        dtls_psk_file        psk;\n"
					. "        dtls_session_zone    z$port:1m;\n"
					. "        proxy_timeout        1s;\n",
				zonecert => "        dtls_certificate     "
					. $pki->path('server-ec.crt') . ";\n"
					. "        dtls_certificate_key "
					. $pki->path('server-ec.key') . ";\n"
					. "        dtls_session_zone    z$port:1m;\n"
					. "        proxy_timeout        1s;\n",
			}->{$kind};

			$servers .= <<"EOF";
        proxy_pass           127.0.0.1:$port{$p};
    }

EOF
		}
	}
}

my $client_ca = $pki->path('root.crt');
my $server_crt = $pki->path('server-ec.crt');
my $server_key = $pki->path('server-ec.key');

$t->write_file_expand('nginx.conf', <<"EOF");

events {
}

stream {
    log_format  pp  '\$server_port \$remote_port \$bytes_received';

    access_log  $d/access.log pp;

    dtls_client_certificate  $client_ca;
    dtls_verify_depth        3;
    proxy_timeout            5s;

$servers
    # routing by who the client is

    upstream pp_go {
        server 127.0.0.1:$port{go};
    }

    upstream pp_node {
        server 127.0.0.1:$port{node};
    }

    map \$dtls_psk_identity \$by_identity {
        dev-1    pp_go;
        default  pp_node;
    }

    map \$dtls_client_s_dn \$by_subject {
        "$client_dn"  pp_go;
        default  pp_node;
    }

    server {
        listen               127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                 on;
        dtls_psk_file        psk;
        dtls_proxy_protocol  on;
        proxy_pass           \$by_identity;
    }

    server {
        listen                127.0.0.1:%%PORT_8981_UDP%% udp;
        dtls                  on;
        dtls_certificate      $server_crt;
        dtls_certificate_key  $server_key;
        dtls_proxy_protocol   on;
        proxy_pass            \$by_subject;
    }

    # off: what the client sends, as it is

    server {
        listen          127.0.0.1:%%PORT_8982_UDP%% udp;
        dtls            on;
        dtls_psk_file   psk;
        proxy_pass      127.0.0.1:%%PORT_8983_UDP%%;
    }
}

EOF

# the proxy's own PROXY protocol (its header in the first datagram) with
# it: "on", and "v2" where nginx has it (1.31.4 on)

for my $value (qw/ on v2 /) {

$t->write_file_expand("both-$value.conf", <<"EOF");
%%TEST_GLOBALS%%

events {
}

stream {
    server {
        listen               127.0.0.1:%%PORT_8984_UDP%% udp;
        dtls                 on;
        dtls_psk_file        psk;
        dtls_proxy_protocol  on;
        proxy_protocol       $value;
        proxy_pass           127.0.0.1:%%PORT_8983_UDP%%;
    }
}

EOF

}

my %backend = (
	go => backend($go, '--listen', "127.0.0.1:$port{go}"),
	node => backend($node, "$FindBin::Bin/interop/proxyproto-node/backend.js",
		'--listen', "127.0.0.1:$port{node}", '--modules', $modules),
);

udp_echo($t, '127.0.0.1:' . port(8983, udp => 1));

# per parser and family: 6 sessions; per parser: resumption 2, renewal 1,
# the zone 4, the payload bound 3, the count 2; routing 4, off 1, nginx -t
# 2, alerts 1

$t->run()->plan(@parsers * (6 * @families + 12) + 4 + 1 + 4 + 1);

my %seen = map { $_ => 0 } @parsers;

###############################################################################

# off: no header; $bytes_received of a session (its ClientHello counts
# too) that the same sessions with headers must have

my $plain = session({ host => '127.0.0.1', port => port(8982, udp => 1) },
	'-i', 'dev-1', '-k', $key, '-m', 'echo', '-n', 3);

is("@{[ $plain->{out} =~ /^recv (.*)$/mg ]}", 'hello-1 hello-2 hello-3',
	'dtls_proxy_protocol off: datagrams as sent');

for my $p (@parsers) {
	for my $f (@families) {
		my $l = $listen{$p}{$f};
		my $ip = $f == 4 ? '127.0.0.1' : '::1';
		my %to = (parser => $p, family => $f, src => $ip, dst => $ip);

		# PSK: three datagrams, each with the same header

		my $s = session($l->{psk}, '-i', 'dev-1', '-k', $key,
			'-m', 'echo', '-n', 3);

		is(join("\n", @{$s->{recv}}), join("\n", map {
			expected(%to, %$s, dport => $l->{psk}{port},
				psk => 'dev-1', data => "hello-$_")
		} 1 .. 3), "$p IPv$f: PSK, every datagram") or diag($s->{out});

		is($s->{received}, $plain->{received},
			"$p IPv$f: \$bytes_received counts no header");

		# an identity of 128 bytes, and SNI

		$s = session($l->{psk}, '-i', $long, '-k', $key2,
			'-S', 'coap.example', '-m', 'echo', '-n', 2);

		is(join("\n", @{$s->{recv}}), join("\n", map {
			expected(%to, %$s, dport => $l->{psk}{port},
				psk => $long, authority => 'coap.example',
				data => "hello-$_")
		} 1 .. 2), "$p IPv$f: PSK identity of 128 bytes, SNI")
			or diag($s->{out});

		# a verified client certificate: its CN

		$s = session($l->{cert}, '-a', $pki->path('client.crt'),
			'-K', $pki->path('client.key'), '-A', $client_ca,
			'-S', 'a.example', '-m', 'echo', '-n', 2);

		is(join("\n", @{$s->{recv}}), join("\n", map {
			expected(%to, %$s, dport => $l->{cert}{port},
				client => 7, verify => 0, cn => 'client-1',
				authority => 'a.example', data => "hello-$_")
		} 1 .. 2), "$p IPv$f: verified client certificate")
			or diag($s->{out});

		# optional_no_ca: a self-signed certificate, admitted unverified,
		# has OpenSSL's error and no CN; no certificate, verify 1

		$s = session($l->{nca}, '-a', $pki->path('client-self.crt'),
			'-K', $pki->path('client-self.key'), '-A', $client_ca,
			'-m', 'echo', '-s', 'self');

		is(join("\n", @{$s->{recv}}), expected(%to, %$s,
			dport => $l->{nca}{port}, client => 7, verify => 18,
			data => 'self-1'), "$p IPv$f: unverified client certificate")
			or diag($s->{out});

		$s = session($l->{nca}, '-A', $client_ca, '-m', 'echo',
			'-s', 'none');

		is(join("\n", @{$s->{recv}}), expected(%to, %$s,
			dport => $l->{nca}{port}, data => 'none-1'),
			"$p IPv$f: no client certificate") or diag($s->{out});
	}

	my $l = $listen{$p}{4};
	my %to = (parser => $p, family => 4, src => '127.0.0.1',
		dst => '127.0.0.1');

	# a resumed session: the certificate came in the session, not on
	# this handshake (sequential mode prints no replies: the backend's
	# own lines)

	my $bmark = length daemon_output($t, $backend{$p});
	my $amark = access_mark($t);

	my ($out) = dtls_client($t, '-c',
		"127.0.0.1:$l->{cert}{port}", '-a', $pki->path('client.crt'),
		'-K', $pki->path('client.key'), '-A', $client_ca,
		'-m', 'sequential', '-n', 2, '-R');

	my @ports = map { $_->[1] } access($amark, $l->{cert}{port}, 2);
	my @lines = grep { /^pp / }
		split /\n/, substr(daemon_output($t, $backend{$p}), $bmark);
	my ($cipher) = map { /ssl\.cipher=(\S+)/ } @lines;
	$seen{$p} += @lines;

	like($out, qr/^summary ok=2 failed=0 reused=1$/m,
		"$p: certificate session resumed");
	is(join("\n", @lines), join("\n",
		map { expected(%to, cipher => $cipher // '-',
			sport => $ports[$_ - 1] // 0, dport => $l->{cert}{port},
			client => $_ == 1 ? 7 : 5, verify => 0, cn => 'client-1',
			data => "hello-$_-1") } 1 .. 2),
		"$p: resumed session: PP2_CLIENT_CERT_SESS only, CN");

	# a renewal: the client's new handshake on the session's port, the
	# header built again for the new keys

	my $s = session($l->{psk}, [ 'handshake', 'send hello-1',
		'send hello-2', 'new-session', 'handshake', 'send hello-s2-1',
		'send hello-s2-2', 'close' ], '-i', 'dev-1', '-k', $key);

	is(join("\n", @{$s->{recv}}), join("\n", map {
		expected(%to, %$s, dport => $l->{psk}{port}, psk => 'dev-1',
			data => "hello-$_")
	} 1, 2, 's2-1', 's2-2'), "$p: renewed session, same header")
		or diag($s->{out});

	# a session of dtls_session_zone, continued in a new nginx session
	# after proxy_timeout: the same header, made from what the zone kept

	$amark = access_mark($t);

	$s = session($l->{zone}, '-i', 'dev-1', '-k', $key, '-S', 'z.example',
		'-m', 'echo', '-n', 2, '-W', 1500);

	is(join("\n", @{$s->{recv}}), join("\n", map {
		expected(%to, %$s, dport => $l->{zone}{port}, psk => 'dev-1',
			authority => 'z.example', data => "hello-$_")
	} 1 .. 2), "$p: PSK session continued from the zone, same header")
		or diag($s->{out});
	is(scalar(access($amark, $l->{zone}{port}, 2)), 2,
		"$p: PSK session: in two nginx sessions");

	$amark = access_mark($t);

	$s = session($l->{zonecert}, '-a', $pki->path('client.crt'),
		'-K', $pki->path('client.key'), '-A', $client_ca,
		'-m', 'echo', '-n', 2, '-W', 1500);

	is(join("\n", @{$s->{recv}}), join("\n", map {
		expected(%to, %$s, dport => $l->{zonecert}{port}, client => 7,
			verify => 0, cn => 'client-1', data => "hello-$_")
	} 1 .. 2), "$p: certificate session continued, same header")
		or diag($s->{out});
	is(scalar(access($amark, $l->{zonecert}{port}, 2)), 2,
		"$p: certificate session: in two nginx sessions");

	# a record and the header must fit the proxy's buffer: one byte more
	# and it is dropped whole, and logged

	my $h = hlen(%to, cipher => 'PSK-AES128-CCM8', psk => 'dev-1');
	my $fit = 1024 - $h;

	my $mark = log_mark($t);

	($out) = dtls_client($t, '-c',
		"127.0.0.1:$l->{small}{port}", '-i', 'dev-1', '-k', $key,
		'-C', 'PSK-AES128-CCM8', '-m', 'echo', '-s', 'z' x ($fit - 1),
		'-t', 1500);

	unlike($out, qr/^recv pp /m, "$p: record of " . ($fit + 1)
		. " bytes and a header of $h not delivered");
	ok(wait_log($t, qr/\[info\].*DTLS record of ${\($fit + 1)} bytes /
		. qr/dropped: with the PROXY protocol header of $h bytes it /
		. qr/exceeds the 1024 bytes free in the proxy buffer /
		. qr/\(proxy_buffer_size\)/, 3, $mark), "$p: dropped record logged");

	$s = session($l->{small}, '-i', 'dev-1', '-k', $key,
		'-C', 'PSK-AES128-CCM8', '-m', 'echo', '-s', 'z' x ($fit - 2));

	is(join("\n", @{$s->{recv}}), expected(%to, %$s,
		dport => $l->{small}{port}, psk => 'dev-1', len => $fit,
		data => 'z' x 32), "$p: record of $fit bytes fits")
		or diag($s->{out});
}

# routing by who the client is

my $s = session({ host => '127.0.0.1', port => port(8980, udp => 1) },
	'-i', 'dev-1', '-k', $key, '-m', 'echo', '-s', 'r');
like("@{$s->{recv}}", qr/^pp parser=go .* psk=dev-1 /,
	'map $dtls_psk_identity: dev-1 to one upstream');

$s = session({ host => '127.0.0.1', port => port(8980, udp => 1) },
	'-i', 'dev-2', '-k', $key, '-m', 'echo', '-s', 'r');
like("@{$s->{recv}}", qr/^pp parser=node .* psk=dev-2 /,
	'map $dtls_psk_identity: dev-2 to the other');

$s = session({ host => '127.0.0.1', port => port(8981, udp => 1) },
	'-a', $pki->path('client.crt'), '-K', $pki->path('client.key'),
	'-m', 'echo', '-s', 'r');
like("@{$s->{recv}}", qr/^pp parser=go .* ssl\.cn=client-1 /,
	"map \$dtls_client_s_dn: $client_dn to one upstream");

$s = session({ host => '127.0.0.1', port => port(8981, udp => 1) },
	'-a', $pki->path('client-int.crt'), '-K', $pki->path('client-int.key'),
	'-m', 'echo', '-s', 'r');
like("@{$s->{recv}}", qr/^pp parser=node .* ssl\.cn=client-int /,
	"map \$dtls_client_s_dn: $client_int_dn to the other");

# every datagram each parser got it parsed

for my $p (@parsers) {
	my $summary = stop_backend($p);

	like($summary, qr/^summary datagrams=(\d+) parsed=\1 failed=0$/m,
		"$p: every header parsed") or diag(daemon_output($t, $backend{$p}));

	my ($got) = $summary =~ /datagrams=(\d+)/;
	is($got, $seen{$p}, "$p: got the datagrams the test saw answered");
}

$t->stop();

is(log_alerts($t), '', 'no alerts in the error log');

# nginx -t

for my $value (qw/ on v2 /) {
	my ($rc, $t_out) = test_config($t, "both-$value.conf");

	SKIP: {
	skip "this nginx has no proxy_protocol $value", 2
		if $t_out =~ /invalid value "$value"/;

	isnt($rc, 0, "nginx -t: proxy_protocol $value with "
		. 'dtls_proxy_protocol fails');
	like($t_out,
		qr/"proxy_protocol" cannot be used with "dtls_proxy_protocol"/,
		"nginx -t: proxy_protocol $value: says why");
	}
}

###############################################################################

# a client session (dtls_client arguments, after the commands of its lines
# mode if any) to a listen; the "pp" lines
# that came back, the protocol and cipher, the client's port and
# $bytes_received from the access log

sub session {
	my ($l, @args) = @_;

	my $amark = access_mark($t);
	my $cmds = ref $args[0] eq 'ARRAY' ? shift @args : undef;
	my $out;

	if ($cmds) {
		my $c = dtls_lines($t, '-c', "$l->{host}:$l->{port}", @args);
		$out = join '', map { ($c->io($_) // '') . "\n" } @$cmds;
		$c->close();

	} else {
		($out) = dtls_client($t, '-c', "$l->{host}:$l->{port}", @args);
	}

	my @recv = $out =~ /^recv (pp .*)$/mg;
	my ($version, $cipher) = $out
		=~ /^handshake ok protocol=(\S+) cipher=(\S+)/m;

	$seen{$_}++ for map { /^pp parser=(\w+)/ ? $1 : () } @recv;

	my ($log) = access($amark, $l->{port}, 1);

	return { out => $out, recv => \@recv, version => $version // '-',
		cipher => $cipher // '-', sport => $log ? $log->[1] : 0,
		received => $log ? $log->[2] : -1 };
}

# the access log lines of a server port written after a mark: a line is
# written when its session ends

sub access {
	my ($amark, $port, $n) = @_;

	my @lines;

	wait_for($t, sub {
		@lines = grep { $_->[0] == $port } map { [ split ' ' ] }
			access_lines($t, $amark);
		return @lines >= $n;
	}, 5);

	return @lines;
}

# the line a parser should answer with, from the specification: what the
# header holds and how large it is

sub expected {
	my (%e) = @_;

	my @tlvs = ($e{authority} ? '0x02' : (), '0x20', $e{psk} ? '0xe4' : ());
	my @ssl = ('0x21', '0x23', defined $e{cn} ? '0x22' : ());
	my $data = $e{data} // '';

	return join ' ', "pp parser=$e{parser}", 'hlen=' . hlen(%e), 'cmd=PROXY',
		"proto=UDP$e{family}", "src=$e{src}", "sport=$e{sport}",
		"dst=$e{dst}", "dport=$e{dport}", 'tlvs=' . join(',', @tlvs),
		$e{authority} ? 'authority=' . esc($e{authority}) : (),
		'ssl.client=' . ($e{client} // 1), 'ssl.verify=' . ($e{verify} // 1),
		'ssl.tlvs=' . join(',', @ssl),
		'ssl.version=' . esc($e{version} // 'DTLSv1.2'),
		'ssl.cipher=' . esc($e{cipher}),
		defined $e{cn} ? 'ssl.cn=' . esc($e{cn}) : (),
		$e{psk} ? 'psk=' . esc($e{psk}) : (),
		'len=' . ($e{len} // length $data), 'data=' . esc(substr($data, 0, 32));
}

# 16 bytes, the addresses, each TLV its 3 bytes and value; PP2_TYPE_SSL's
# value is client (1), verify (4), the version, cipher and CN sub-TLVs

sub hlen {
	my (%e) = @_;

	my $ssl = 1 + 4 + 3 + length($e{version} // 'DTLSv1.2')
		+ 3 + length($e{cipher}) + (defined $e{cn} ? 3 + length $e{cn} : 0);

	return 16 + ($e{family} == 4 ? 12 : 36)
		+ ($e{authority} ? 3 + length $e{authority} : 0)
		+ 3 + $ssl + ($e{psk} ? 3 + length $e{psk} : 0);
}

sub esc {
	my ($s) = @_;
	$s =~ s/([^\x21-\x7e]|%)/sprintf '%%%02X', ord $1/ge;
	return $s;
}

# a parser's backend, started and ready: its pid

sub backend {
	my (@cmd) = @_;

	my $pid = daemon($t, @cmd);

	wait_for($t, sub { daemon_output($t, $pid) =~ /pp_backend ready/ }, 10)
		or die "@cmd did not start:\n" . daemon_output($t, $pid);

	return $pid;
}

# its summary, once it has stopped

sub stop_backend {
	my ($p) = @_;

	my $pid = $backend{$p};

	kill 'TERM', $pid;
	wait_for($t, sub { waitpid($pid, WNOHANG) == $pid }, 5);

	my ($summary) = daemon_output($t, $pid) =~ /^(summary .*)$/m;
	return $summary // '';
}


###############################################################################
