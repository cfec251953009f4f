package Test::DTLS::Hello;

# DTLS 1.2 ClientHellos built byte by byte, and a look at what the server
# answers, for the tests of the stateless cookie exchange; and datagrams
# from a forged source, through a raw socket (root only):
#
#	my $s = Test::DTLS::Hello::client($port);
#	my $hvr = parse_hvr(exchange($s, client_hello(random => random(32))));
#	exchange($s, client_hello(random => ..., cookie => $hvr->{cookie},
#		msg_seq => 1));   # msg_type() 2: a ServerHello
#	garbage(client('[::1]:5684'), 5);   # undef: no reply
#
#	socket(my $raw, PF_INET, SOCK_RAW, 255);
#	send_udp4($raw, '127.0.0.2', 40000, $port, $hello);

use warnings;
use strict;

use base qw/ Exporter /;

our @EXPORT = qw/ client exchange random client_hello msg_type parse_hvr /;
our @EXPORT_OK = qw/ garbage send_udp4 send_udp6 /;

use IO::Select;
use IO::Socket::IP;
use Socket qw/ AF_INET6 inet_aton inet_pton pack_sockaddr_in
	pack_sockaddr_in6 /;

# a UDP socket to 127.0.0.1:PORT, or to HOST:PORT ("[::1]:PORT")

sub client {
	my ($peer) = @_;

	my $s = IO::Socket::IP->new(
		Proto => 'udp',
		$peer =~ /:/ ? (PeerAddr => $peer)
			: (PeerAddr => "127.0.0.1:$peer", LocalAddr => '127.0.0.1'),
	) or die "Can't create UDP socket: $!\n";

	return $s;
}

# send one datagram, and return the reply within a second (or the
# seconds given), or undef

sub exchange {
	my ($s, $data, $wait) = @_;

	$s->send($data);

	return undef unless IO::Select->new($s)->can_read($wait // 1);

	my $reply;
	$s->recv($reply, 65536);
	return $reply;
}

# N datagrams of random bytes (1 to 200) and an empty one, as a first
# datagram must not be: the reply within a second, or undef

sub garbage {
	my ($s, $n) = @_;

	$s->send(random(1 + int rand 200)) for 1 .. $n;

	return exchange($s, '');
}

sub random {
	return join '', map { chr int rand 256 } 1 .. shift;
}

# a DTLS 1.2 ClientHello in one record; the options bend it out of shape

sub client_hello {
	my (%o) = @_;

	my $cookie = $o{cookie} // '';
	my $sid = $o{session_id} // '';
	my $suites = $o{suites} // "\xc0\xa8\x00\xa8\x00\xa9";

	my $body = pack('n', $o{version} // 0xfefd) . $o{random}
		. pack('C', length $sid) . $sid
		. pack('C', length $cookie) . $cookie
		. pack('n', length $suites) . $suites
		. pack('CC', 1, 0);

	my $len = length $body;
	my $frag = $o{fragment} ? $len - 10 : $len;

	my $hs = pack('C', $o{msg_type} // 1) . substr(pack('N', $len), 1)
		. pack('n', $o{msg_seq} // 0)
		. "\0\0\0" . substr(pack('N', $frag), 1)
		. substr($body, 0, $frag);

	return pack('Cnn', 22, 0xfeff, $o{epoch} // 0)
		. pack('nN', 0, $o{seq} // 0)
		. pack('n', length $hs) . $hs;
}

# the handshake message type of a record: 3 HelloVerifyRequest, 2 ServerHello

sub msg_type {
	my ($record) = @_;
	return undef unless defined $record && length($record) > 13;
	return ord(substr($record, 13, 1));
}

sub parse_hvr {
	my ($r) = @_;
	my %h;

	return \%h unless defined $r && length($r) >= 28;

	($h{type}) = unpack('C', $r);
	(undef, $h{record_seq}) = unpack('nN', substr($r, 5, 6));
	$h{msg_type} = msg_type($r);
	$h{version} = unpack('n', substr($r, 25, 2));
	$h{cookie} = substr($r, 28, unpack('C', substr($r, 27, 1)));

	return \%h;
}

# UDP in IPv4 to 127.0.0.1 from any address and port, through a raw
# socket: the header checksum filled in by the kernel, no UDP checksum;
# returns what send() does

sub send_udp4 {
	my ($raw, $src, $sport, $dport, $payload) = @_;

	my $udp = pack('nnnn', $sport, $dport, 8 + length $payload, 0)
		. $payload;
	my $ip = pack('CCnnnCCna4a4', 0x45, 0, 20 + length $udp,
		int rand 65536, 0, 64, 17, 0, inet_aton($src),
		inet_aton('127.0.0.1'));

	return send($raw, $ip . $udp, 0,
		pack_sockaddr_in(0, inet_aton('127.0.0.1')));
}

# the same in IPv6 to ::1, where the UDP checksum is required

sub send_udp6 {
	my ($raw, $src, $sport, $dport, $payload) = @_;

	my $s = inet_pton(AF_INET6, $src);
	my $d = inet_pton(AF_INET6, '::1');
	my $len = 8 + length $payload;

	my $udp = pack('nnnn', $sport, $dport, $len, 0) . $payload;
	my $sum = checksum($s . $d . pack('NxxxC', $len, 17) . $udp) || 0xffff;
	substr($udp, 6, 2) = pack('n', $sum);

	my $ip = pack('NnCC', 0x60000000, $len, 17, 64) . $s . $d;

	return send($raw, $ip . $udp, 0, pack_sockaddr_in6(0, $d));
}

sub checksum {
	my ($data) = @_;

	$data .= "\0" if length($data) % 2;

	my $sum = 0;
	$sum += $_ for unpack('n*', $data);
	$sum = ($sum & 0xffff) + ($sum >> 16) while $sum >> 16;

	return ~$sum & 0xffff;
}

1;
