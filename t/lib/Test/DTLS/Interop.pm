package Test::DTLS::Interop;

# What the interop tests found, for docs/interop.md: each test records one
# row per client, suite and check; scripts/interop-report.pl makes the
# table from the rows of the last run (build/interop/*.tsv).
#
#	my $r = Test::DTLS::Interop->new('gnutls-cli', $version);
#	$r->record('PSK-AES128-CCM8', 'echo 100', $ok);
#	$r->record('ECDHE-PSK-CHACHA20-POLY1305', 'close', $ok, $why);
#
# Rows: client, client version, suite (or "-"), check, "pass" or "fail",
# and why, for a failure the report should explain.

use warnings;
use strict;

use File::Basename qw/ dirname /;
use File::Path qw/ make_path /;
use Cwd qw/ abs_path /;

our $DIR = abs_path(dirname(__FILE__) . '/../../../..') . '/build/interop';

sub new {
	my ($class, $client, $version) = @_;

	make_path($DIR);

	(my $file = "$DIR/$client.tsv") =~ s/[^\w.\/-]/_/g;
	open my $fh, '>', $file or die "Can't write $file: $!\n";
	$fh->autoflush(1);

	return bless { fh => $fh, client => $client,
		version => $version // '?' }, $class;
}

sub record {
	my ($self, $suite, $check, $ok, $why) = @_;

	print { $self->{fh} } join("\t", $self->{client}, $self->{version},
		$suite // '-', $check, $ok ? 'pass' : 'fail',
		$ok ? '' : $why // ''), "\n";

	return $ok;
}

1;
