#!/usr/bin/perl

# make bench-psk (and make bench): the PSK store at fleet scale, in one
# run.  The same nginx, one worker on CPU 0, with
#
#   text 10     dtls_psk_file with 10 identities (the text format)
#   cdb 1M      dtls_psk_file cdb: with 1,000,000 identities
#   text 300k   the text format near its 16 MB limit (nginx -t and RSS)
#
# and build/tools/dtls_load on CPU 1 making full handshakes (one echo and
# close_notify each), each with an identity drawn at random among the
# store's (dtls_load -I), the stores taking turns run after run.  Also
# nginx -t's time for each, the worker's and master's resident memory
# (anonymous: nginx's own; file: the pages of the mapped database), the
# time to build the database with the cdb tool, and the cost of the
# handshake that has a worker switch to a replaced database of 1,000,000.
# Writes docs/benchmarks-psk.md.
#
# Knobs: BENCH_SECONDS (per run, default 2), BENCH_REPEAT (default 10),
# BENCH_OUT (default docs/).

use warnings;
use strict;

use File::Basename qw/ dirname /;
use JSON::PP;
use POSIX qw/ strftime /;
use Time::HiRes qw/ sleep time /;

use lib dirname(__FILE__);
use Bench;

###############################################################################

my $OUT = $ENV{BENCH_OUT} || "$TOP/docs";

my $SECONDS = $ENV{BENCH_SECONDS} || 2;
my $REPEAT = $ENV{BENCH_REPEAT} || 10;

my $CIPHER = 'PSK-AES128-CCM8';
my $MILLION = 1_000_000;

start_run();
my (%stores, @runs);

die "no cdb tool: apt-get install tinycdb\n"
	unless `cdb -h 2>&1` =~ /cdb -c/;

###############################################################################

# one key for every identity: the lookup is what is measured

my $key = random_key();

sub id { sprintf 'bench-%07d', $_[0] }

say("writing the stores");

write_text("$dir/text10.psk", 10);
write_text("$dir/text300k.psk", 300_000);

{
	open my $fh, '>', "$dir/cdb.in" or die $!;
	printf $fh "+13,%d:%s->%s\n", length $key, id($_), $key
		for 0 .. $MILLION - 1;
	print $fh "\n";
	close $fh;
}

my $t0 = time();
system("cdb -c -p 0600 -t - $dir/psk.cdb.new < $dir/cdb.in") == 0
	or die "cdb -c failed\n";
my $cdb_build = time() - $t0;
rename "$dir/psk.cdb.new", "$dir/psk.cdb" or die $!;

my $cdb_size = -s "$dir/psk.cdb";
say(sprintf("cdb -c: 1,000,000 identities, %.1f MB, in %.2f s",
	$cdb_size / 1e6, $cdb_build));

%stores = (
	text10 => { name => 'text, 10 identities', file => "$dir/text10.psk",
		n => 10 },
	text300k => { name => 'text, 300,000 identities',
		file => "$dir/text300k.psk", n => 300_000 },
	cdb => { name => 'cdb, 1,000,000 identities', file => "cdb:$dir/psk.cdb",
		n => $MILLION },
);

my $echo_port = echo_backend();

for my $s (sort keys %stores) {
	my $st = $stores{$s};

	$st->{port} = free_port();
	start_nginx($s);

	# nginx -t: every identity read and checked

	my @t;
	for (1 .. 3) {
		my $t1 = time();
		system("$NGINX -t -q -p $dir -c $dir/nginx-$s.conf "
			. "-e $dir/nginx-$s.error.log") == 0
			or die "nginx -t $s failed\n";
		push @t, time() - $t1;
	}
	$st->{nginx_t} = median(@t);

	say(sprintf("%-9s nginx -t %.3f s", $s, $st->{nginx_t}));
}

sleep 0.5;

###############################################################################

say("handshakes/s, concurrency 64, random identities, "
	. "$REPEAT x ${SECONDS}s each");

for my $s (qw/ text10 cdb /) {
	measure($s, 'warm-up');
}

for my $rep (1 .. $REPEAT) {
	for my $s (qw/ text10 cdb /) {
		push @runs, measure($s, $rep);
	}
}

for my $s (sort keys %stores) {
	my $st = $stores{$s};
	$st->{worker} = mem(nginx_worker("nginx-$s"));
	$st->{master} = mem($pids{"nginx-$s"});
}

# a replacement of the database: the handshake that has the worker look
# at it maps and checks the new file, 1,000,000 records

say("replacing the database");

my @base = map { one_handshake('cdb', 500_000) } 1 .. 5;

system("cdb -c -p 0600 -t - $dir/psk.cdb.new < $dir/cdb.in") == 0
	or die "cdb -c failed\n";
rename "$dir/psk.cdb.new", "$dir/psk.cdb" or die $!;
sleep 1.2;

my $switch = one_handshake('cdb', 500_000);
my $replaced = grep { /PSK database .* replaced: 1000000 identities/ }
	read_lines("$dir/nginx-cdb.error.log");

die "the database was not replaced (see $dir/nginx-cdb.error.log)\n"
	unless $replaced;

my $after = mem(nginx_worker('nginx-cdb'));

say(sprintf("handshake %.1f ms, the one switching %.1f ms",
	1000 * median(@base), 1000 * $switch));

stop_all();

report();

###############################################################################

sub write_text {
	my ($file, $n) = @_;

	open my $fh, '>', $file or die "$file: $!\n";
	print $fh id($_), ":$key\n" for 0 .. $n - 1;
	close $fh;
	chmod 0600, $file;
}

# the store's nginx, as nginx-STORE

sub start_nginx {
	my ($s) = @_;

	my $st = $stores{$s};

	nginx_start("nginx-$s", $SERVER_CPU, $NGINX, <<"EOF", $st->{port});
    server {
        listen                127.0.0.1:$st->{port} udp;
        dtls                  on;
        dtls_psk_file         $st->{file};
        dtls_ciphers          $CIPHER;
        dtls_handshake_limit  2048;
        proxy_pass            127.0.0.1:$echo_port;
        proxy_timeout         10s;
    }
EOF
}

sub measure {
	my ($s, $rep) = @_;

	my $st = $stores{$s};
	my $pid = nginx_worker("nginx-$s");
	my ($u0, $s0) = cpu_seconds($pid);
	my $t1 = time();

	my $r = run_load('-c', "127.0.0.1:$st->{port}", '-m', 'handshake',
		'-n', 64, '-d', $SECONDS, '-w', 1, '-i', 'bench', '-I', $st->{n},
		'-k', $key, '-C', $CIPHER);
	my ($u1, $s1) = cpu_seconds($pid);
	my $wall = time() - $t1;

	$r->{store} = $s;
	$r->{rep} = $rep;
	$r->{cpu_us} = $r->{handshakes_per_s}
		? 1e6 * (($u1 + $s1 - $u0 - $s0) / $wall) / $r->{handshakes_per_s}
		: undef;

	say(sprintf("  %-7s %-7s %7.0f/s  p50 %6dus  p99 %6dus  %4.0f us cpu"
		. "  fail %d", $s, $rep, $r->{handshakes_per_s},
		$r->{latency_us}{p50} // 0, $r->{latency_us}{p99} // 0,
		$r->{cpu_us} // 0, $r->{failures} // 0));

	return $r;
}

# the wall time of one handshake (dtls_client: cookie, handshake, echo)

sub one_handshake {
	my ($s, $i) = @_;

	my $t1 = time();
	my $out = `$TOOLS/dtls_client -c 127.0.0.1:$stores{$s}{port} -m echo -i ${\ id($i)} -k $key 2>&1`;
	my $t = time() - $t1;

	die "dtls_client: $out\n" unless $out =~ /^handshake ok/m;
	return $t;
}

sub mem {
	my ($pid) = @_;

	my %m;
	open my $fh, '<', "/proc/$pid/status" or return {};
	while (<$fh>) {
		$m{$1} = $2 if /^(VmRSS|RssAnon|RssFile):\s+(\d+)/;
	}
	return \%m;
}

sub read_lines {
	my ($file) = @_;
	open my $fh, '<', $file or return ();
	return <$fh>;
}

###############################################################################

sub report {
	my %m = machine($NGINX);
	my ($cpu, $nginx_v) = @m{qw/ cpu nginx /};

	my %hs;
	for my $s (qw/ text10 cdb /) {
		my @r = grep { $_->{store} eq $s } @runs;
		$hs{$s} = {
			rate => median(map { $_->{handshakes_per_s} } @r),
			min => (sort { $a <=> $b } map { $_->{handshakes_per_s} } @r)[0],
			max => (sort { $b <=> $a } map { $_->{handshakes_per_s} } @r)[0],
			p50 => median(map { $_->{latency_us}{p50} } @r),
			p99 => median(map { $_->{latency_us}{p99} } @r),
			cpu => median(map { $_->{cpu_us} } @r),
			cpu_min => (sort { $a <=> $b } map { $_->{cpu_us} } @r)[0],
			fail => eval { my $f = 0; $f += $_->{failures} // 0 for @r; $f },
		};
	}

	my $mb = sub { sprintf '%.1f', ($_[0] // 0) / 1024 };

	my $md = <<"EOF";
# The PSK store at fleet scale

`make bench-psk` (bench/psk.pl), also run by `make bench`: the same
nginx ($nginx_v, one worker on CPU 0) with a PSK text file of 10
identities, a cdb database of 1,000,000 (`dtls_psk_file cdb:`), and, for
memory and `nginx -t`, a text file of 300,000 (near its 16 MB limit);
`build/tools/dtls_load` on CPU 1 makes full handshakes (DTLS 1.2,
$CIPHER, one echo and close_notify each, 64 at a time), each with an
identity drawn at random among the store's (`dtls_load -I`), so that the
database's lookups fall all over its file. The stores take turns,
$REPEAT runs of ${SECONDS}s each. Run on ${\ strftime('%Y-%m-%d', gmtime)},
$cpu, 2 CPUs shared with other work (expect noise of 10-20%).

## Handshakes

| store | handshakes/s: median (min-max) | nginx CPU per handshake: median (least) | latency p50 / p99 (medians) | failures |
|---|---|---|---|---|
EOF

	for my $s (qw/ text10 cdb /) {
		my $h = $hs{$s};
		$md .= sprintf "| %s | %.0f (%.0f-%.0f) | %.0f us (%.0f us) | %d / %d us | %d |\n",
			$stores{$s}{name}, $h->{rate}, $h->{min}, $h->{max},
			$h->{cpu}, $h->{cpu_min}, $h->{p50}, $h->{p99}, $h->{fail};
	}

	my @ratio = (100 * $hs{cdb}{rate} / $hs{text10}{rate},
		100 * $hs{cdb}{max} / $hs{text10}{max},
		$hs{cdb}{cpu_min} - $hs{text10}{cpu_min});

	$md .= sprintf <<"EOF", @ratio;

With an identity from the database of a million, handshakes ran at %.0f%%
of the rate with one from the file of ten (median runs; best runs:
%.0f%%), and the least CPU a handshake cost nginx differs by %+.0f us. The
machine is shared: the spread of each row is its noise. The lookup itself
(one hash, one or two probes, a hex decode of the key) is well under a
microsecond, and a worker's first touch of each page of the mapping
costs it a minor fault (the page being in the page cache), once.

## Loading and memory

| store | file | `nginx -t` | worker RSS (anon / file) | master RSS (anon / file) |
|---|---|---|---|---|
EOF

	for my $s (qw/ text10 text300k cdb /) {
		my $st = $stores{$s};
		my $f = $st->{file};
		$f =~ s/^cdb://;
		$md .= sprintf "| %s | %.1f MB | %.3f s | %s MB (%s / %s) | %s MB (%s / %s) |\n",
			$st->{name}, (-s $f) / 1e6, $st->{nginx_t},
			$mb->($st->{worker}{VmRSS}), $mb->($st->{worker}{RssAnon}),
			$mb->($st->{worker}{RssFile}),
			$mb->($st->{master}{VmRSS}), $mb->($st->{master}{RssAnon}),
			$mb->($st->{master}{RssFile});
	}

	$md .= sprintf <<"EOF",

RSS is read after the handshake runs. "anon" is nginx's own memory, where
the text format's keys live; "file" counts the pages of files mapped,
the nginx binary's and libraries' and, for cdb, those of the database
the worker touched (they belong to the page cache, shared, and not
copied: a worker that made handshakes with a thousand random identities
holds about as many 4 KB pages of it). The master checks every record at
`nginx -t`, start and reload, then gives the pages back
(`madvise(MADV_DONTNEED)`), so its RSS stays that of an nginx with no
keys.

## Building and replacing the database

- `cdb -c` built the database of 1,000,000 identities (%.1f MB, %.0f bytes an
  identity with 16-byte keys) in %.2f s.
- The handshake after a replacement (rename) of that database, which
  has the worker map and check all its records before using it, took
  %.0f ms, against %.1f ms for a handshake before it (dtls_client, cookie
  exchange and one echo included): the check of a million records costs
  a worker about %.0f ms, once per replacement. The worker's RSS after
  it: %s MB (anon %s MB).
EOF
		$cdb_size / 1e6, $cdb_size / $MILLION, $cdb_build,
		1000 * $switch, 1000 * median(@base),
		1000 * ($switch - median(@base)),
		$mb->($after->{VmRSS}), $mb->($after->{RssAnon});

	write_file("$OUT/benchmarks-psk.md", $md);

	write_file("$OUT/benchmarks-psk.json",
		JSON::PP->new->canonical->pretty->encode({
			runs => \@runs, stores => { map { $_ => { %{$stores{$_}},
				file => undef } } keys %stores },
			cdb_build_s => $cdb_build, cdb_bytes => $cdb_size,
			switch_s => $switch, handshake_s => median(@base),
		}));

	say("wrote $OUT/benchmarks-psk.md");
}

###############################################################################
