package Test::DTLS::Freescan;

# nginx run under t/tools/freescan.so, which searches every block that
# free() or realloc() gives back for the secrets of the test directory's
# file "patterns" ("LABEL HEX" lines), and what the shim logged:
#
#	freescan_needs($t);
#	my $master = freescan_run($t);
#	...
#	my $scan = freescan_log($t);
#	canaries_ok($scan, $master);
#	is(found($scan, qr/^psk:/), '', 'no key freed unwiped');
#	freescan_diag($scan);

use warnings;
use strict;

use base qw/ Exporter /;

our @EXPORT = qw/ freescan_needs freescan_run freescan_log found canary
	canaries_ok freescan_diag /;

use Test::More;
use Test::Nginx::DTLS;

# the test skipped where the shim cannot see what is freed

sub freescan_needs {
	my ($t) = @_;

	plan(skip_all => 'ASan has its own free()') if $ENV{TEST_NGINX_ASAN};
	tool($t, 'freescan.so');
}

# $t->run() under the shim; the master's pid

sub freescan_run {
	my ($t) = @_;

	my $d = $t->testdir();

	local $ENV{LD_PRELOAD} = tool($t, 'freescan.so');
	local $ENV{FREESCAN_PATTERNS} = "$d/patterns";
	local $ENV{FREESCAN_LOG} = "$d/freescan.log";

	$t->run();

	return nginx_pid($t);
}

# the log: its text, its hits ([ LABEL, "pid=N", ... ]), and of each
# process that exited, the patterns and ticket keys it knew by then

sub freescan_log {
	my ($t) = @_;

	my $log = $t->read_file('freescan.log');
	my %scan = (log => $log, exited => {}, tickets => {});

	$scan{hits} = [ map { [ split / / ] }
		$log =~ /^hit (\S+ pid=\d+ \S+ size=\d+)$/mg ];

	while ($log =~ /^exit pid=(\d+) .* patterns=(\d+) tickets=(\d+)$/mg) {
		$scan{exited}{$1} = $2;
		$scan{tickets}{$1} = $3;
	}

	return \%scan;
}

# the labels found that match, each once

sub found {
	my ($scan, $re) = @_;

	my %seen;
	$seen{$_->[0]}++ for grep { $_->[0] =~ $re } @{$scan->{hits}};

	return join ' ', sort keys %seen;
}

# the control: the canary found in the master, or with 'worker' in
# another process

sub canary {
	my ($scan, $master, $where) = @_;

	my $worker = ($where // '') eq 'worker';

	return scalar grep {
		$_->[0] eq 'canary' && ($_->[1] eq "pid=$master" xor $worker)
	} @{$scan->{hits}};
}

# the controls, two tests: the canary, a copy freed unwiped on purpose, is
# found in the master (nginx.conf's text and arguments) and in a worker
# (its configuration, freed at exit), or the shim saw nothing

sub canaries_ok {
	my ($scan, $master) = @_;

	ok(canary($scan, $master), 'control: canary found in the master');
	ok(canary($scan, $master, 'worker'), 'control: canary found in a worker');
}

# what the shim logged beside its exits and canaries, once a test failed

sub freescan_diag {
	my ($scan) = @_;

	diag(join "\n", grep { !/^(exit|hit canary) / } split /\n/, $scan->{log})
		if !Test::More->builder->is_passing;
}

1;
