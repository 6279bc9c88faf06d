#!/usr/bin/perl
# Converts the CSV files of the npm package @ip-location-db/asn (RouteViews,
# RIR and DB-IP data) into one MaxMind DB with the GeoLite2-ASN record schema:
#   autonomous_system_number        uint32
#   autonomous_system_organization  utf8_string (left out when empty)
# The tree is IPv6 with IPv4 in ::/96, aliased from ::ffff:0:0/96 (IPv4-mapped
# addresses), 2001::/32 (Teredo) and 2002::/16 (6to4) as in MaxMind's own
# databases, so libmaxminddb answers IPv4 and IPv4-mapped lookups alike.
#
# Usage: asn_csv_to_mmdb.pl [options] IPV4_CSV IPV6_CSV OUTPUT
#   --source-version=V   the package's version, named in the description
#   --build-epoch=N      the metadata's build time; by default the time the
#                        version names (ip-location-db versions end in
#                        YYYYMMDDHH, UTC), else SOURCE_DATE_EPOCH, else now.
#                        The same input and epoch give the same file, and the
#                        epoch says how old the data is, as the country
#                        database's does
#   --record-size=N      24, 28 or 32 bits (default 24; the writer fails if
#                        the tree does not fit)
# Needs Debian's libmaxmind-db-writer-perl. Rows are start,end,asn,organization
# with inclusive ranges; an organization with a comma or quote is quoted, with
# quotes doubled. Where rows overlap, the later row wins the overlap (what a
# reader of the CSV finds by searching for the last range starting at or
# before an address); each overlap is reported. Adjacent rows with the same
# number and organization are inserted as one range. IPv6 rows inside the
# aliased networks cannot be stored (IPv4 answers there) and are reported.
# Writes OUTPUT.tmp and renames it, so OUTPUT is never half written.
use strict;
use warnings;

use Encode ();
use Getopt::Long qw(GetOptions);
use Socket qw(AF_INET AF_INET6 inet_pton inet_ntop);
use Time::Local qw(timegm);

my $kDatabaseType = 'ip-location-db-asn';
my $kMaxAsn       = 4294967295;

# The networks the writer aliases to ::/96 (plus ::/96 itself, where IPv4
# lives): IPv6 rows must stay out of them. Kept as inclusive packed ranges.
my @kAliasedV6 = map { [ network_bounds(@$_) ] }
    ( [ '::', 96 ], [ '::ffff:0:0', 96 ], [ '2001::', 32 ], [ '2002::', 16 ] );

sub usage {
    die "usage: $0 [--source-version=V] [--build-epoch=N] [--record-size=N]"
        . " IPV4_CSV IPV6_CSV OUTPUT\n";
}

# The first and last packed address of an IPv6 network.
sub network_bounds {
    my ( $address, $prefix ) = @_;
    my $first = inet_pton( AF_INET6, $address );
    my $bits  = unpack( 'B128', $first );
    return (
        pack( 'B128', substr( $bits, 0, $prefix ) . '0' x ( 128 - $prefix ) ),
        pack( 'B128', substr( $bits, 0, $prefix ) . '1' x ( 128 - $prefix ) )
    );
}

# The packed address after (delta 1) or before (delta -1) a packed address;
# undef past either end of the family.
sub step {
    my ( $packed, $delta ) = @_;
    my @bytes = unpack( 'C*', $packed );
    for ( my $i = $#bytes; $i >= 0; --$i ) {
        my $byte = $bytes[$i] + $delta;
        if ( $byte >= 0 && $byte <= 255 ) {
            $bytes[$i] = $byte;
            return pack( 'C*', @bytes );
        }
        $bytes[$i] = $delta > 0 ? 0 : 255;
    }
    return undef;
}

# The time an ip-location-db version names (e.g. 2.3.2026061719 is
# 2026-06-17 19:00 UTC), in Unix seconds; undef if it names none.
sub version_epoch {
    my ($version) = @_;
    return undef
        unless defined $version && $version =~ /(\d{4})(\d{2})(\d{2})(\d{2})\z/;
    my $epoch = eval { timegm( 0, 0, $4, $3, $2 - 1, $1 ) };
    return $epoch;
}

# Splits one CSV line into (start, end, asn, organization), or dies naming
# what is wrong. Only the organization may be quoted.
sub parse_row {
    my ($line) = @_;
    my ( $start, $end, $asn, $organization ) = split /,/, $line, 4;
    die "expected start,end,asn,organization\n" unless defined $organization;
    if ( $organization =~ /\A"/ ) {
        die "unbalanced quotes in the organization\n"
            unless $organization =~ /\A"((?:[^"]|"")*)"\z/;
        ( $organization = $1 ) =~ s/""/"/g;
    }
    elsif ( $organization =~ /"/ ) {
        die "a quote in an unquoted organization\n";
    }
    die "the AS number '$asn' is not a number from 0 to $kMaxAsn\n"
        unless $asn =~ /\A[0-9]{1,10}\z/ && $asn <= $kMaxAsn;
    # Decoded, so that the writer stores the characters, not the bytes again.
    $organization = eval { Encode::decode( 'UTF-8', $organization, Encode::FB_CROAK ) };
    die "the organization is not UTF-8\n" unless defined $organization;
    return ( $start, $end, $asn + 0, $organization );
}

# The parts of [first, last] outside every aliased network, as pairs of
# packed addresses.
sub outside_aliases {
    my ( $first, $last ) = @_;
    my @pieces = ( [ $first, $last ] );
    for my $alias (@kAliasedV6) {
        my ( $alias_first, $alias_last ) = @$alias;
        @pieces = map {
            my ( $a, $b ) = @$_;
            if ( $b lt $alias_first || $a gt $alias_last ) { ($_) }
            else {
                my @kept;
                push @kept, [ $a, step( $alias_first, -1 ) ] if $a lt $alias_first;
                push @kept, [ step( $alias_last, 1 ), $b ] if $b gt $alias_last;
                @kept;
            }
        } @pieces;
    }
    return @pieces;
}

# Reads one CSV file and hands each range to $insert (packed first, packed
# last, asn, organization) in file order, with adjacent equal rows joined.
# Returns counts of what it did.
sub read_csv {
    my ( $path, $family, $insert ) = @_;
    my %counts = ( rows => 0, ranges => 0, overlaps => 0, joined => 0, aliased => 0 );
    my $width  = $family == AF_INET ? 4 : 16;
    open my $fh, '<:raw', $path or die "cannot read $path: $!\n";
    my ( $pending, $previous_last );
    my $flush = sub {
        return unless $pending;
        my ( $first, $last, $asn, $organization ) = @$pending;
        my @pieces = $family == AF_INET6 ? outside_aliases( $first, $last ) : ( [ $first, $last ] );
        ++$counts{aliased} if @pieces != 1 || $pieces[0][0] ne $first || $pieces[0][1] ne $last;
        $insert->( @$_, $asn, $organization ) for @pieces;
        $counts{ranges} += @pieces;
        undef $pending;
    };
    while ( my $line = <$fh> ) {
        $line =~ s/\r?\n\z//;
        next if $line eq '';
        my ( $start, $end, $asn, $organization ) = eval { parse_row($line) };
        die "$path:$.: $@" unless defined $start;
        my $first = inet_pton( $family, $start );
        my $last  = inet_pton( $family, $end );
        die "$path:$.: '$start' or '$end' is not an address of this file's family\n"
            unless defined $first && defined $last
            && length($first) == $width && length($last) == $width;
        die "$path:$.: the range ends before it starts\n" if $last lt $first;
        ++$counts{rows};
        if ( defined $previous_last && $first le $previous_last ) {
            ++$counts{overlaps};
            warn "$path:$.: $start-$end overlaps an earlier row; this row wins the overlap\n";
        }
        if (   $pending
            && $pending->[2] == $asn
            && $pending->[3] eq $organization
            && defined( my $next = step( $pending->[1], 1 ) ) ) {
            if ( $next eq $first ) {
                $pending->[1] = $last;
                ++$counts{joined};
                $previous_last = $last;
                next;
            }
        }
        $flush->();
        $pending = [ $first, $last, $asn, $organization ];
        $previous_last = $last if !defined $previous_last || $last gt $previous_last;
    }
    $flush->();
    close $fh;
    die "$path has no rows\n" unless $counts{rows};
    return \%counts;
}

sub main {
    my %options = ( 'record-size' => 24 );
    GetOptions( \%options, 'source-version=s', 'build-epoch=i', 'record-size=i' ) or usage();
    usage() unless @ARGV == 3;
    my ( $ipv4_csv, $ipv6_csv, $output ) = @ARGV;
    my $epoch = $options{'build-epoch'} // version_epoch( $options{'source-version'} )
        // $ENV{SOURCE_DATE_EPOCH} // time();
    my $version = $options{'source-version'} // 'unknown version';

    # Loaded here, so that a missing module gets a message saying what to do.
    eval { require MaxMind::DB::Writer::Tree; 1 }
        or die "error: the Perl module MaxMind::DB::Writer is missing:"
        . " apt-get install libmaxmind-db-writer-perl\n";

    my $tree = MaxMind::DB::Writer::Tree->new(
        ip_version    => 6,
        record_size   => $options{'record-size'},
        database_type => $kDatabaseType,
        languages     => ['en'],
        description   => {
            en => "Autonomous systems of IPv4 and IPv6 networks from ip-location-db"
                . " (npm \@ip-location-db/asn $version): RouteViews, RIR statistics"
                . " (NRO) and DB-IP IP to ASN Lite data, CC BY 4.0"
                . " (https://creativecommons.org/licenses/by/4.0/);"
                . " attribution: routeviews.org, nro.net, DB-IP.com (https://db-ip.com)"
        },
        map_key_type_callback => sub {
            $_[0] eq 'autonomous_system_number' ? 'uint32' : 'utf8_string';
        },
        merge_strategy     => 'none',
        alias_ipv6_to_ipv4 => 1,
        # Keep every row as published: the exporter decides what is private.
        remove_reserved_networks => 0,
        _build_epoch             => $epoch,
    );
    my %records;    # one Perl record per (asn, organization)
    my $insert = sub {
        my ( $first, $last, $asn, $organization ) = @_;
        my $family = length($first) == 4 ? AF_INET : AF_INET6;
        my $record = $records{"$asn\0$organization"} //= {
            autonomous_system_number => $asn,
            ( $organization eq '' ? () : ( autonomous_system_organization => $organization ) ),
        };
        $tree->insert_range( inet_ntop( $family, $first ), inet_ntop( $family, $last ), $record );
    };
    my %counts;
    $counts{ipv4} = read_csv( $ipv4_csv, AF_INET,  $insert );
    $counts{ipv6} = read_csv( $ipv6_csv, AF_INET6, $insert );

    open my $fh, '>:raw', "$output.tmp" or die "cannot write $output.tmp: $!\n";
    $tree->write_tree($fh);
    close $fh or die "cannot write $output.tmp: $!\n";
    rename "$output.tmp", $output or die "cannot rename $output.tmp to $output: $!\n";

    for my $family (qw(ipv4 ipv6)) {
        my $c = $counts{$family};
        printf "%s: %d rows, %d ranges inserted, %d joined to the row before,"
            . " %d overlapping an earlier row, %d cut by aliased networks\n",
            $family, @{$c}{qw(rows ranges joined overlaps aliased)};
    }
    printf "wrote %s: %d distinct records, build epoch %d\n", $output, scalar( keys %records ),
        $epoch;
    return 0;
}

exit main();
