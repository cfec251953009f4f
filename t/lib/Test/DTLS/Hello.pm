package Test::DTLS::Hello;

# DTLS 1.2 ClientHellos built byte by byte, and a look at what the server
# answers, for the tests of the stateless cookie exchange:
#
#	my $s = Test::DTLS::Hello::client($port);
#	my $hvr = parse_hvr(exchange($s, client_hello(random => random(32))));
#	exchange($s, client_hello(random => ..., cookie => $hvr->{cookie},
#		msg_seq => 1));   # msg_type() 2: a ServerHello

use warnings;
use strict;

use base qw/ Exporter /;

our @EXPORT = qw/ client exchange random client_hello msg_type parse_hvr /;

use IO::Select;
use IO::Socket::IP;

sub client {
	my ($port) = @_;

	my $s = IO::Socket::IP->new(
		Proto => 'udp',
		PeerAddr => "127.0.0.1:$port",
		LocalAddr => '127.0.0.1',
	) or die "Can't create UDP socket: $!\n";

	return $s;
}

# send one datagram, and return the reply within a second, or undef

sub exchange {
	my ($s, $data) = @_;

	$s->send($data);

	return undef unless IO::Select->new($s)->can_read(1);

	my $reply;
	$s->recv($reply, 65536);
	return $reply;
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

1;
