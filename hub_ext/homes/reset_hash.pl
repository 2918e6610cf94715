# The reset helper's hash of large files (run by perl-base, which has no Digest::SHA).
# Reads NUL-separated paths; prints each path, NUL, then the sha256sum line of its non-zero
# 4 KiB blocks, each preceded by its index, read only from the data extents that
# SEEK_DATA/SEEK_HOLE report: the cost is the allocated data, and where the holes lie
# does not matter (a hole and written zeros hash the same).
use strict; use warnings; use Fcntl qw(SEEK_SET); use Errno qw(ENXIO);
my ($SEEK_DATA, $SEEK_HOLE, $B, $CHUNK) = (3, 4, 4096, 256);
$/ = "\0"; $| = 1;
while (my $path = <STDIN>) {
    chomp $path;
    open(my $fh, "<:raw", $path) or die "cannot read $path: $!\n";
    my $size = -s $fh;
    print "$path\0";
    open(my $sum, "|-", "sha256sum") or die "cannot run sha256sum: $!\n";
    binmode $sum;
    my ($pos, $next) = (0, 0);
    while ($pos < $size) {
        my $start = sysseek($fh, $pos, $SEEK_DATA);
        if (!defined $start) { last if $! == ENXIO; die "cannot read $path: $!\n"; }
        my $end = sysseek($fh, $start, $SEEK_HOLE);
        defined $end or die "cannot read $path: $!\n";
        my ($i, $last) = (int($start / $B), int(($end - 1) / $B));
        $i = $next if $i < $next;
        while ($i <= $last) {
            my $count = $last - $i + 1;
            $count = $CHUNK if $count > $CHUNK;
            sysseek($fh, $i * $B, SEEK_SET) or die "cannot read $path: $!\n";
            my $buf = "";
            while (length($buf) < $count * $B) {
                my $n = sysread($fh, $buf, $count * $B - length($buf), length($buf));
                defined $n or die "cannot read $path: $!\n";
                last if $n == 0;
            }
            for (my $off = 0; $off < length($buf); $off += $B) {
                my $block = substr($buf, $off, $B);
                print $sum pack("Q>", $i + $off / $B), $block if $block =~ /[^\0]/;
            }
            $i += $count;
        }
        $next = $last + 1;
        $pos = $end;
    }
    close($sum) or die "sha256sum failed on $path\n";
}
