#!/usr/bin/perl

# dtls_psk_file cdb:FILE, the keys in a constant database built with
# tinycdb's cdb tool: handshakes with its identities; nginx -t naming the
# record, its identity and the reason of each bad entry, never its key;
# the permission warning; a replacement renamed over the file seen by the
# next handshake within a second, while an established session of a
# removed identity keeps echoing; replacements that are malformed,
# truncated, unreadable or gone refused once with their reason, the
# previous file still served; and the example of docs/directives.md,
# built by its command as written there.

###############################################################################

use warnings;
use strict;

use Test::More;

use IO::Handle;
use POSIX qw//;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, 'dtls_client');

plan(skip_all => 'no cdb tool (tinycdb)') unless `cdb -h 2>&1` =~ /cdb -c/;

my $d = $t->testdir();

# as root, the workers run as nobody and must read the database
# themselves, as they would in production; the test directory lets them

my ($user, $group, $uid) = ((getpwuid($>))[0], undef, $>);

if ($> == 0) {
	my $gid;
	($uid, $gid) = (getpwnam('nobody'))[2, 3];
	($user, $group) = ('nobody', scalar getgrgid($gid));
	chmod 0711, $d;
}

my $user_conf = $> == 0 ? "user $user $group;" : '';

sub hex_key { unpack('H*', join '', map { chr int rand 256 } 1 .. $_[0]) }

my %key = map { $_ => hex_key(16) } qw/ dev-1 dev-2 dev-3 dev-new /;
my $key2_new = hex_key(32);
my $bad_key = 'zz' . hex_key(15);

# a database of NAME with [identity, value] records, through the cdb
# tool's own input format (which takes any bytes); renamed into place

sub cdb_file {
	my ($name, %opts) = @_;

	my $in = join '', map { sprintf "+%d,%d:%s->%s\n", length $_->[0],
		length $_->[1], $_->[0], $_->[1] } @{$opts{records}};

	open my $fh, '|-', "cdb -c -t - $d/$name.new" or die "cdb: $!\n";
	binmode $fh;
	print $fh "$in\n";
	close $fh or die "cdb -c $name failed\n";

	chmod $opts{mode} // 0600, "$d/$name.new";
	chown $uid, -1, "$d/$name.new" unless $opts{root};
	rename "$d/$name.new", "$d/$name" or die "rename $name: $!\n";
}

# 1,000 identities, ours among them

my @filler = map { [ sprintf('fleet-%04d', $_), hex_key(16) ] } 1 .. 1000;

cdb_file('psk.cdb', records => [ @filler[0 .. 499],
	(map { [ $_, $key{$_} ] } qw/ dev-1 dev-2 dev-3 /),
	[ 'urn:dev:a b', $key{'dev-3'} ], @filler[500 .. 999] ]);

# the example of docs/directives.md, by its command

my $doc = do {
	open my $fh, '<', "$FindBin::Bin/../docs/directives.md" or die $!;
	local $/;
	<$fh>;
};

my ($section) = $doc =~ /^### dtls_psk_file\n(.*?)^### /ms;
my @doc_keys = $section =~ /^    ([\w-]+):([0-9a-f]+)$/mg;
my ($command) = $section =~ /^```sh\n(.*?)^```$/ms;

$t->write_file('dtls.psk', "# identity:hexkey\n"
	. join '', map { "$doc_keys[$_ * 2]:$doc_keys[$_ * 2 + 1]\n" }
	0 .. @doc_keys / 2 - 1);
chmod 0600, "$d/dtls.psk";

$command =~ s!/etc/nginx/!$d/!g;
$command =~ s/\bwww-data\b/$user/g;

my $built = system('sh', '-c', $command) == 0;

$t->write_file_expand('nginx.conf', <<"EOF");

$user_conf

events {
}

stream {
    server {
        listen         127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls           on;
        dtls_psk_file  cdb:psk.cdb;
        proxy_pass     127.0.0.1:%%PORT_8981_UDP%%;
        proxy_timeout  10s;
    }

    server {
        listen         127.0.0.1:%%PORT_8982_UDP%% udp;
        dtls           on;
        dtls_psk_file  cdb:%%TESTDIR%%/dtls.cdb;
        return         "\$dtls_psk_identity";
    }
}

EOF

# nginx -t on bad databases: one configuration each

sub bad_conf {
	my ($name) = @_;

	cdb_conf("$name.conf", $name);
	return test_config($t, "$name.conf");
}

# a configuration of one server with the database DB, HEAD's lines first

sub cdb_conf {
	my ($file, $db, $head) = @_;

	$head //= '';

	$t->write_file_expand($file, <<"EOF");

${head}pid  %%TESTDIR%%/t.pid;

events {
}

stream {
    server {
        listen         127.0.0.1:%%PORT_8983_UDP%% udp;
        dtls           on;
        dtls_psk_file  cdb:$db;
        return         x;
    }
}

EOF
}

my $long = 'L' x 200;

cdb_file('badhex.cdb', records => [ @filler[0 .. 9],
	[ 'dev-bad', $bad_key ], @filler[10 .. 19] ]);
cdb_file('short.cdb', records => [ [ 'dev-short', hex_key(15) ] ]);
cdb_file('dup.cdb', records => [ [ 'dev-1', $key{'dev-1'} ],
	[ 'dev-2', $key{'dev-2'} ], [ 'dev-1', $key{'dev-3'} ] ]);
cdb_file('long.cdb', records => [ [ $long, $key{'dev-1'} ] ]);
cdb_file('ctrl.cdb', records => [ [ "dev\x01\"x", $key{'dev-1'} ] ]);
cdb_file('empty.cdb', records => []);
cdb_file('open.cdb', records => [ [ 'dev-1', $key{'dev-1'} ] ],
	mode => 0644);
$t->write_file('random.cdb', join '', map { chr int rand 256 } 1 .. 3000);

{
	open my $fh, '<', "$d/psk.cdb" or die $!;
	binmode $fh;
	local $/;
	my $whole = <$fh>;
	$t->write_file('cut.cdb', substr($whole, 0, length($whole) - 100));

	# the first record's identity claims 64 KB: it runs past the records

	substr($whole, 2048, 4) = pack('V', 65536);
	$t->write_file('overflow.cdb', $whole);
}

my @bad = (
	[ 'badhex.cdb', qr/"\Q$d\E\/badhex\.cdb", record 11, identity "dev-bad": /
		. qr/key is not hexadecimal/ ],
	[ 'short.cdb', qr/record 1, identity "dev-short": key must be 16 to 64 /
		. qr/bytes/ ],
	[ 'dup.cdb', qr/record 3, identity "dev-1": duplicate identity/ ],
	[ 'long.cdb', qr/record 1, identity "L{128}"\.\.\.: identity must be /
		. qr/1 to 128 bytes/ ],
	[ 'ctrl.cdb', qr/record 1, identity "dev\?\?x": identity must be /
		. qr/printable ASCII/ ],
	[ 'empty.cdb', qr/"\Q$d\E\/empty\.cdb" has no keys/ ],
	[ 'random.cdb', qr/random\.cdb": hash table \d+ is outside the file/ ],
	[ 'cut.cdb', qr/cut\.cdb": hash table \d+ is outside the file/ ],
	[ 'overflow.cdb', qr/overflow\.cdb", record 1: truncated/ ],
	[ 'missing.cdb', qr/missing\.cdb": cannot be opened \(2: /],
);

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1), 'e:');

$t->run()->plan(42 + @bad);

# nginx -t writes to the same error log

my $db = '127.0.0.1:' . port(8980, udp => 1);
my $ex = '127.0.0.1:' . port(8982, udp => 1);

my @shown;


###############################################################################

for my $b (@bad) {
	my ($rc, $out) = bad_conf($b->[0]);
	push @shown, $out;
	ok($rc != 0 && $out =~ /\[emerg\] PSK database .*$b->[1]/,
		"nginx -t: $b->[0]") or diag($out);
}

my ($rc, $out) = bad_conf('open.cdb');
push @shown, $out;
ok($rc == 0 && $out =~ /\[warn\] PSK database "\Q$d\E\/open\.cdb" is /
	. qr/readable by others, keep it to the workers' user/,
	'nginx -t: readable by others, warned') or diag($out);

($rc, $out) = bad_conf('psk.cdb');
is($rc, 0, 'nginx -t: good database');

my $after_t = log_mark($t);

# handshakes with identities from the database

like(client('dev-1'), qr/^recv e:hello-1$/m, 'handshake: dev-1');
like(client('dev-3'), qr/^recv e:hello-1$/m, 'handshake: dev-3');
like(client('fleet-0777', $filler[776][1]), qr/^recv e:hello-1$/m,
	'handshake: an identity among 1,000');
like(client('urn:dev:a b', $key{'dev-3'}), qr/^recv e:hello-1$/m,
	'handshake: an identity with colons and a blank');

my $mark = log_mark($t);

unlike(client('dev-nobody', $key{'dev-1'}), qr/^handshake ok/m,
	'unknown identity refused');
ok(wait_log($t, qr/unknown PSK identity "dev-nobody"/, 3, $mark),
	'unknown identity logged');
unlike(client('dev-1', $key{'dev-2'}), qr/^recv/m, 'wrong key refused');

# the example of the docs

ok($built, 'docs example: built by the documented command');
ok(-e "$d/dtls.cdb" && !-e "$d/dtls.cdb.new", 'docs example: renamed');
is((stat "$d/dtls.cdb")[4], $uid, 'docs example: owned by the workers');
like(client('gw-1', $doc_keys[1], $ex), qr/^recv gw-1$/m,
	'docs example: gw-1');
like(client('sensor-0042', $doc_keys[3], $ex), qr/^recv sensor-0042$/m,
	'docs example: sensor-0042, a 24-byte key');

###############################################################################

# a session of dev-1, which the replacement removes, lives through it

SKIP: {
skip 'no openssl binary', 8 unless `openssl version 2>/dev/null`;

# its input through a FIFO, each line when the test says (should it have
# ended, what is written to it is lost, not fatal)

$SIG{PIPE} = 'IGNORE';

POSIX::mkfifo("$d/session.in", 0600) or die "mkfifo: $!\n";

my $session = daemon($t, 'sh', '-c', "timeout 30 openssl s_client "
	. "-dtls1_2 -connect $db -psk_identity dev-1 -psk $key{'dev-1'} "
	. "-quiet -no_ign_eof < $d/session.in 2>&1");

open my $in, '>', "$d/session.in" or die "session.in: $!\n";
$in->autoflush(1);
print $in "one\n";

ok(wait_for($t, sub { daemon_output($t, $session) =~ /^e:one$/m }, 5),
	'established session: echoes');

# three replacements a second apart, each adding an identity that the
# next handshake, a second later, must find (a worker that looked less
# often than once a second would miss one)

my $seen = 0;

for my $i (1 .. 3) {
	client('dev-3');

	cdb_file('psk.cdb', records => [ @filler, [ 'dev-1', $key{'dev-1'} ],
		[ 'dev-3', $key{'dev-3'} ], [ "dev-add-$i", $key{'dev-new'} ] ]);

	sleep 1;

	$seen++ if client("dev-add-$i", $key{'dev-new'}) =~ /^recv e:hello-1$/m;
}

is($seen, 3, 'added identities seen within 1 s, 3 times');

# the replacement: dev-1 removed, dev-2 rotated, dev-new added

$mark = log_mark($t);

cdb_file('psk.cdb', records => [ @filler,
	[ 'dev-2', $key2_new ], [ 'dev-3', $key{'dev-3'} ],
	[ 'dev-new', $key{'dev-new'} ] ]);

sleep 1;

like(client('dev-new'), qr/^recv e:hello-1$/m,
	'replaced: added identity within 1 s');
like(client('dev-2', $key2_new), qr/^recv e:hello-1$/m,
	'replaced: rotated key');
unlike(client('dev-2'), qr/^recv/m, 'replaced: old key refused');
unlike(client('dev-1'), qr/^handshake ok/m, 'replaced: removed identity');
ok(wait_log($t, qr/\[notice\].*PSK database "\Q$d\E\/psk\.cdb" replaced: /
	. qr/1003 identities/, 3, $mark), 'replaced: logged');

print $in "two\n";

ok(wait_for($t, sub { daemon_output($t, $session) =~ /^e:two$/m }, 5),
	'established session of the removed identity: still echoes');

close $in;
}

###############################################################################

# replacements refused: the one in use stays

sub refused {
	my ($name, $re) = @_;

	my $m = log_mark($t);

	sleep 1;

	like(client('dev-new'), qr/^recv e:hello-1$/m, "$name: previous served");
	unlike(client('only-new', $key{'dev-1'}), qr/^handshake ok/m,
		"$name: not used");

	# logged once, not at each handshake

	sleep 1;
	client('dev-new');

	my @lines = grep_log($t, qr/\[error\] .*PSK database "\Q$d\E\/psk\.cdb"/,
		$m);
	ok(@lines == 1 && $lines[0] =~ $re
		&& $lines[0] =~ /the previous one stays in use|stays in use/,
		"$name: logged once, with the reason") or diag(join "\n", @lines);
}

my @only_new = ([ 'only-new', $key{'dev-1'} ],
	[ 'dev-new', $key{'dev-new'} ]);

cdb_file('psk.cdb', records => [ @only_new, @filler[0 .. 99],
	[ 'dev-bad', $bad_key ] ]);
refused('malformed', qr/not used, record 103, identity "dev-bad": key is /
	. qr/not hexadecimal;/);

rename "$d/cut.cdb", "$d/psk.cdb";
refused('truncated', qr/not used: hash table \d+ is outside the file/);

cdb_file('psk.cdb', records => [ @only_new ], root => 1);

SKIP: {
	skip 'workers run as root', 3 if $> == 0 && $user eq 'root';

	chmod 0000, "$d/psk.cdb" if $> != 0;
	refused('unreadable', qr/not used: it cannot be opened; .* \(13: /);
}

unlink "$d/psk.cdb";
refused('removed', qr/cannot be read; the one mapped stays in use \(2: /);

# a good one again, readable by others: warned, and used

$mark = log_mark($t);

cdb_file('psk.cdb', records => [ @only_new ], mode => 0644);

sleep 1;

like(client('only-new', $key{'dev-1'}), qr/^recv e:hello-1$/m,
	'good again: used');
ok(wait_log($t, qr/\[warn\] .*PSK database "\Q$d\E\/psk\.cdb" is readable /
	. qr/by others/, 3, $mark), 'good again: permission warned');

my $alerts = join "\n", grep_log($t, qr/\[(alert|crit|emerg)\]/, $after_t);

# a worker respawned by the master starts from the master's mapping, the
# file of the start, and switches to the file of now at its first
# handshake

my ($worker) = workers($t);
kill 'KILL', $worker;

ok(wait_for($t, sub { my @w = workers($t); @w && $w[0] != $worker }, 5),
	'worker respawned');
like(client('only-new', $key{'dev-1'}), qr/^recv e:hello-1$/m,
	'respawned worker: the file of now');

###############################################################################

# no key in any log, at debug level, nor in nginx -t's output

$t->stop();

my $logs = join '', error_log($t), @shown;

my @keys = (values %key, $key2_new, $bad_key, @doc_keys[1, 3],
	map { $_->[1] } @filler[0 .. 99]);

is(join(' ', grep { $logs =~ /\Q$_\E/i } @keys), '', 'no key in the logs');

is($alerts, '', 'no alerts');

# the dynamic module (make builds both): linked with tinycdb, it checks a
# database as the static one does

SKIP: {
	my $prefix = $ENV{TEST_NGINX_PREFIX} || "$FindBin::Bin/../build/nginx";
	my $compat = "$prefix/sbin/nginx-compat";
	my $so = "$prefix/modules/ngx_stream_dtls_module.so";

	skip 'no dynamic module build', 2 unless -x $compat && -f $so;

	for my $db (qw/ psk.cdb dup.cdb /) {
		cdb_conf("dyn-$db.conf", $db, "load_module  $so;\n");
	}

	my ($out, $rc) = run_tool($t, { stderr => 1 }, $compat, '-t',
		'-p', "$d/", '-c', 'dyn-psk.cdb.conf', '-e', 'error.log');
	is($rc, 0, 'dynamic module: database checked') or diag($out);

	($out, $rc) = run_tool($t, { stderr => 1 }, $compat, '-t',
		'-p', "$d/", '-c', 'dyn-dup.cdb.conf', '-e', 'error.log');
	ok($rc != 0 && $out =~ /record 3, identity "dev-1": duplicate/,
		'dynamic module: bad database refused') or diag($out);
}

###############################################################################

sub client {
	my ($identity, $k, $peer) = @_;

	my ($out) = run_tool($t, 'dtls_client', '-c', $peer // $db,
		'-m', 'echo', '-i', $identity, '-k', $k // $key{$identity},
		'-t', 2000);

	return $out;
}

###############################################################################
