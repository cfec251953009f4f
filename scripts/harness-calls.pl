#!/usr/bin/perl

# Rewrites a test's calls of the harness subs that are no longer methods of
# Test::Nginx (it keeps nginx-tests' names) into the functions of
# Test::Nginx::DTLS: $t->wait_log(...) becomes wait_log($t, ...),
# $t->run_daemon(...) daemon($t, ...) (the pid), a reload() or stop() whose
# value is used reload_wait($t) or stop_status($t).  For a test written
# against the old harness, as a branch's new test is at a merge:
#
#   perl scripts/harness-calls.pl t/dtls_new.t ...

use warnings;
use strict;

my @same = qw/ log_mark error_log grep_log wait_log log_alerts wait_for tool
	run_tool udp_echo udp_relay_stop udp_relay udp_request daemon_output
	workers running exit_status test_config spawn expand /;
my %renamed = (pid => 'nginx_pid', binary => 'nginx_binary',
	run_daemon => 'daemon', reload => 'reload_wait');

for my $file (@ARGV) {
	open my $fh, '<', $file or die "$file: $!\n";
	my $s = do { local $/; <$fh> };
	close $fh;

	my $old = $s;

	for my $name (@same, sort keys %renamed) {
		my $new = $renamed{$name} // $name;
		$s =~ s/\$(\w+)->$name\(\)/$new(\$$1)/g;
		$s =~ s/\$(\w+)->$name\(/$new(\$$1, /g;
		$s =~ s/\$(\w+)->$name\b(?!\()/$new(\$$1)/g;
	}

	$s =~ s/is\(\$(\w+)->stop\(\)/is(stop_status(\$$1)/g;
	$s =~ s/= \$(\w+)->stop\(\);/= stop_status(\$$1);/g;
	$s =~ s/^use Test::Nginx qw\/ port port_free \/;$/use Test::Nginx;/m;

	$s =~ s/^(use Test::Nginx;\n)/$1use Test::Nginx::DTLS;\n/m
		if $s ne $old && $s !~ /^use Test::Nginx::DTLS/m;

	next if $s eq $old;

	open $fh, '>', $file or die "$file: $!\n";
	print $fh $s;
	close $fh;

	print "$file\n";
}
