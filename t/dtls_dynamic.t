#!/usr/bin/perl

# Tests of the dynamic module: build/nginx/sbin/nginx-compat (nginx without
# the module) loads build/nginx/modules/ngx_stream_dtls_module.so with
# load_module, proxies DTLS to a UDP echo backend, sets the variables, and
# survives a reload; without load_module, "dtls" is an unknown directive.

###############################################################################

use warnings;
use strict;

use Test::More;

use Cwd qw/ abs_path /;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS qw/ :DEFAULT line_of /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

# always nginx-compat and the .so of one build of this repository
# (TEST_NGINX_PREFIX, build/nginx by default: make sets it for builds
# against other versions), whatever TEST_NGINX_BINARY and
# TEST_NGINX_GLOBALS say

my $repo = abs_path("$FindBin::Bin/..");
my $prefix = $ENV{TEST_NGINX_PREFIX} || "$repo/build/nginx";
my $compat = "$prefix/sbin/nginx-compat";
my $so = "$prefix/modules/ngx_stream_dtls_module.so";

plan(skip_all => "no $compat") unless -x $compat;
plan(skip_all => "no $so") unless -f $so;

$ENV{TEST_NGINX_BINARY} = $compat;
delete $ENV{TEST_NGINX_GLOBALS};

my $t = Test::Nginx->new()->has(qw/stream udp/);

tool($t, qw/ dtls_client udp_echo /);

my $d = $t->testdir();
my $key = hexkey();

psk_file($t, 'psk', "dev:$key\n");

# the server, and the same server without load_module

my $conf = <<'EOF';
%%TEST_GLOBALS%%

events {
}

stream {
    log_format  dtls  '$remote_addr $dtls_protocol $dtls_cipher '
                      '$dtls_psk_identity $dtls_session_reused';

    server {
        listen          127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls            on;
        dtls_psk_file   psk;
        proxy_pass      127.0.0.1:%%PORT_8981_UDP%%;
        proxy_timeout   5s;
        access_log      %%TESTDIR%%/access.log dtls;
    }
}

EOF

$t->write_file_expand('nginx.conf', "load_module  $so;\n\n" . $conf);
$t->write_file_expand('noload.conf', $conf);

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1), 'echo:');

$t->plan(13);

my $p = port(8980, udp => 1);

sub echo3 {
	my ($o) = dtls_client($t, { timeout => 15 }, '-m', 'echo',
		'-n', '3', '-i', 'dev', '-k', $key, '-c', "127.0.0.1:$p",
		'-t', '5000');
	return $o;
}

###############################################################################

# nginx-compat has no dtls of its own

is(nginx_binary($t), $compat, 'binary is nginx-compat');

my ($rc, $out) = test_config($t, 'noload.conf');
my $line = line_of($t, 'noload.conf', qr/^\s*dtls\s+on/);

isnt($rc, 0, 'without load_module: nginx -t fails');
like($out, qr/unknown directive "dtls" in \Q$d\E\/noload\.conf:$line\b/,
	'without load_module: unknown directive "dtls"');

# with load_module

($rc, $out) = test_config($t);
is($rc, 0, 'with load_module: nginx -t passes') or diag($out);

my $mark = log_mark($t);
$t->run();

# a DTLS session through the loaded module to the echo backend

$out = echo3();
like($out, qr/^handshake ok protocol=DTLSv1\.2 cipher=\S+ reused=0$/m,
	'handshake');
like($out, qr/^recv echo:hello-1\nrecv echo:hello-2\nrecv echo:hello-3$/m,
	'replies from the backend');
like($out, qr/^echo ok n=3$/m, 'echo ok');

# the variables of the module, in the access log at the session's end

ok(wait_for($t, sub { $t->read_file('access.log') ne '' }, 5),
	'access log written');
like($t->read_file('access.log'),
	qr/^127\.0\.0\.1 DTLSv1\.2 PSK-\S+ dev \.$/m, 'variables');

# a reload with the module loaded: the new workers still speak DTLS

ok(reload_done($t), 'reload');

$out = echo3();
like($out, qr/^echo ok n=3$/m, 'echo ok after reload');

# the error log: no alerts, and never the key

is(log_alerts($t, $mark), '', 'no alerts since start');
ok(index(error_log($t), $key) < 0, 'no key in error log');

###############################################################################
