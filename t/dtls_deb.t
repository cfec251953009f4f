#!/usr/bin/perl

# Tests of the Debian package (make deb): installs nginx, libnginx-mod-stream
# and build/libnginx-mod-stream-dtls_*.deb with no service started, checks
# the package's layout and Depends, runs Debian's /usr/sbin/nginx with the
# enabled module snippets on a test configuration (its own prefix and pid
# file, loopback ports), makes a DTLS-PSK handshake and echo through it
# with openssl s_client, checks that the package's .so in an nginx of
# another build (build/nginx/sbin/nginx-compat), and the .so of that build
# in Debian's nginx, are refused as "not binary compatible", and purges the
# package.  Root on Debian 12 only.

###############################################################################

use warnings;
use strict;

use Test::More;

use Cwd qw/ abs_path /;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $repo = abs_path("$FindBin::Bin/..");
my $pkg = 'libnginx-mod-stream-dtls';
my $so = '/usr/lib/nginx/modules/ngx_stream_dtls_module.so';
my $available = '/usr/share/nginx/modules-available/mod-stream-dtls.conf';
my $enabled = '/etc/nginx/modules-enabled/70-mod-stream-dtls.conf';
my $policy = '/usr/sbin/policy-rc.d';

plan(skip_all => 'not root: installs packages') if $> != 0;

# once, with the default build: the package does not change with the nginx
# under test (make test-asan, make NGINX=... test)

plan(skip_all => 'the package is tested by make test of the default build')
	if $ENV{TEST_NGINX_ASAN} || ($ENV{TEST_NGINX_PREFIX}
	&& abs_path($ENV{TEST_NGINX_PREFIX}) ne "$repo/build/nginx");

my $debian = -r '/etc/debian_version'
	? do { local (@ARGV, $/) = '/etc/debian_version'; <> } : '';
plan(skip_all => 'not Debian 12 (bookworm)') unless $debian =~ /^12\./;

my ($deb) = sort { -M $a <=> -M $b } glob("$repo/build/${pkg}_*.deb");
plan(skip_all => "no build/${pkg}_*.deb (make deb)") unless $deb;

plan(skip_all => "$pkg is installed already: not touching it")
	if installed($pkg);

sub installed {
	my ($p) = @_;
	my $s = `dpkg-query -W -f='\${Status}' $p 2>/dev/null`;
	return $s =~ /ok installed/;
}

# packages go in and out with a policy-rc.d that refuses every service
# action (kept if there is one already)

my $own_policy = !-e $policy;

sub apt {
	my (@args) = @_;

	if ($own_policy) {
		open my $fh, '>', $policy or die "$policy: $!\n";
		print $fh "#!/bin/sh\nexit 101\n";
		close $fh;
		chmod 0755, $policy;
	}

	local $ENV{DEBIAN_FRONTEND} = 'noninteractive';
	my $out = `apt-get -y -q --no-install-recommends @args 2>&1`;
	my $rc = $? >> 8;

	unlink $policy if $own_policy;

	diag("apt-get @args:\n$out") if $rc;
	return $rc == 0;
}

my $was_running = nginx_service_running();

sub nginx_service_running {
	return -s '/run/nginx.pid' || `pgrep -x -u 0 -f '^nginx: master process /usr/sbin/nginx( |\$)' 2>/dev/null` ne '';
}

END {
	local $?;

	# whatever happened, the package is not left behind

	apt('purge', $pkg) if installed($pkg);
}

$ENV{TEST_NGINX_BINARY} = '/usr/sbin/nginx';
delete $ENV{TEST_NGINX_GLOBALS};

my $t = Test::Nginx->new();

tool($t, 'udp_echo');

my $d = $t->testdir();
my $key = hexkey();

psk_file($t, 'psk', "dev:$key\n");

# Debian's own nginx.conf loads modules-enabled/*.conf, whose load_module
# lines name modules/ under the prefix: the same here, under the test's own

symlink '/usr/lib/nginx/modules', "$d/modules" or die "symlink: $!\n";

$t->write_file_expand('nginx.conf', <<"EOF");
include  /etc/nginx/modules-enabled/*.conf;

%%TEST_GLOBALS%%

events {
}

stream {
    server {
        listen          127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls            on;
        dtls_psk_file   psk;
        proxy_pass      127.0.0.1:%%PORT_8981_UDP%%;
        proxy_timeout   5s;
    }
}

EOF

# the package's .so in nginx-compat, nginx of this repository's own build

$t->write_file_expand('compat.conf', <<"EOF");
load_module  $so;

%%TEST_GLOBALS%%

events {
}
EOF

$t->write_file_expand('own.conf', <<"EOF");
load_module  modules/ngx_stream_module.so;
load_module  $repo/build/nginx/modules/ngx_stream_dtls_module.so;

%%TEST_GLOBALS%%

events {
}
EOF

$t->plan(18);

###############################################################################

# install: Debian's nginx and stream module, then the package, no service

ok(apt('install', 'nginx', 'libnginx-mod-stream'),
	'nginx and libnginx-mod-stream installed');
ok(apt('install', $deb), "$pkg installed");

my @files = split /\n/, `dpkg -L $pkg`;
ok((grep { $_ eq $so } @files), 'package ships the .so in modules/');
ok((grep { $_ eq $available } @files), 'and its modules-available snippet');

is(readlink($enabled), $available, 'enabled as 70-mod-stream-dtls.conf');
is(`cat $available`, "load_module modules/ngx_stream_dtls_module.so;\n",
	'snippet loads the module');

my @order = sort glob('/etc/nginx/modules-enabled/*.conf');
my ($i_stream) = grep { $order[$_] =~ m{/\d+-mod-stream\.conf$} } 0 .. $#order;
my ($i_dtls) = grep { $order[$_] eq $enabled } 0 .. $#order;
ok(defined $i_stream && defined $i_dtls && $i_stream < $i_dtls,
	'loaded after ngx_stream_module.so');

my $abi = `dpkg-query -W -f='\${Depends}' libnginx-mod-stream`;
($abi) = $abi =~ /(nginx-abi-[^\s,]+)/;
my $depends = `dpkg-query -W -f='\${Depends}' $pkg`;
ok($abi && $depends =~ /(^|, )\Q$abi\E(,|$)/, "depends on $abi")
	or diag("Depends: $depends");
like($depends, qr/(^|, )libnginx-mod-stream(,|$)/,
	'depends on libnginx-mod-stream');

ok(!$was_running ? !nginx_service_running() : 1, 'no nginx service started');

# Debian's nginx with the enabled modules, DTLS-PSK and echo

my ($rc, $out) = test_config($t);
is($rc, 0, '/usr/sbin/nginx -t with modules-enabled') or diag($out);

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1), 'echo:');
$t->run();

my $p = port(8980, udp => 1);

($out) = run_tool($t, { timeout => 15, stderr => 1 }, '/bin/sh', '-c',
	"(echo hello-deb; sleep 2) | openssl s_client -dtls1_2 -no_ign_eof "
	. "-psk_identity dev -psk $key -connect 127.0.0.1:$p");

like($out, qr/^\s*Protocol\s*: DTLSv1\.2$/m, 's_client: DTLSv1.2 handshake');
like($out, qr/^echo:hello-deb$/m, 's_client: echo through nginx');

$t->stop();

is(log_alerts($t), '', 'no alerts');

# another build of nginx: its own "not binary compatible", no crash, both
# ways: the package's .so in nginx-compat of this repository's build, and
# that build's .so (make) in Debian's nginx

SKIP: {
	my $compat = "$repo/build/nginx/sbin/nginx-compat";
	skip "no $compat", 1 unless -x $compat;

	local $t->{_binary} = $compat;
	($rc, $out) = test_config($t, 'compat.conf');
	ok($rc > 0 && $out =~ /module "\Q$so\E" is not binary compatible/,
		'package .so in nginx-compat: "not binary compatible"')
		or diag("exit code $rc:\n$out");
}

SKIP: {
	my $own = "$repo/build/nginx/modules/ngx_stream_dtls_module.so";
	skip "no $own", 1 unless -f $own;

	($rc, $out) = test_config($t, 'own.conf');
	ok($rc > 0 && $out =~ /module "\Q$own\E" is not binary compatible/,
		'build/ .so in Debian\'s nginx: "not binary compatible"')
		or diag("exit code $rc:\n$out");
}

# removal leaves nothing of the package behind

ok(apt('purge', $pkg), "$pkg purged");
ok(!installed($pkg) && !-e $so && !-e $available && !-l $enabled
	&& !-l "$enabled.removed", 'no file, snippet or link left');

###############################################################################
