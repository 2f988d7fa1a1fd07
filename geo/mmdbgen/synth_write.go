package mmdbgen

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
)

// WriteSynth writes the database Synth(opts) describes: a GeoIP2 City
// database with the same networks, records and IPv4 aliases as
// Write(w, City, Synth(opts)) writes. The same opts always give the same
// bytes.
//
// It writes the MaxMind DB format itself rather than through mmdbwriter,
// because mmdbwriter holds a pointer-linked node per tree node and hashes
// every inserted record: at full GeoLite2 size (4 million networks) it took
// minutes and gigabytes. Here networks arrive in address order, so the
// search tree is built along one path with no lookups, in flat arrays of
// two uint32 records per node; each location is encoded once and networks
// point at it. The tree, the one large part of the file, is the only thing
// held in memory.
func WriteSynth(w io.Writer, opts SynthOptions) error {
	p, err := planSynth(opts)
	if err != nil {
		return err
	}
	data, recOff := encodeSynthData(p)
	var t tree
	t.init()
	aliased := false
	var terr error
	p.walk(func(n synthNet) {
		switch {
		case terr != nil:
		case n.v6:
			if !aliased {
				terr, aliased = t.aliasIPv4(), true
				if terr != nil {
					return
				}
			}
			terr = t.insert(n.addr, 0, n.bits, recData|uint32(n.loc))
		default:
			terr = t.insert(0, n.addr, 96+n.bits, recData|uint32(n.loc))
		}
	})
	if terr == nil && !aliased {
		terr = t.aliasIPv4()
	}
	if terr != nil {
		// A bug in the model, not a problem with opts.
		return fmt.Errorf("build search tree: %w", terr)
	}
	desc := fmt.Sprintf("Meridian synthetic %s database (v4 %d, v6 %d, locations %d, seed %d)",
		City, opts.V4, opts.V6, opts.Locations, opts.Seed)
	if err := t.write(w, data, recOff, desc); err != nil {
		return fmt.Errorf("write database: %w", err)
	}
	return nil
}

// Tree records before the node count is known: 0 is empty (node 0, the
// root, is nobody's child), recData|i is location i, anything else a node.
const (
	recEmpty uint32 = 0
	recData  uint32 = 1 << 31
)

// pageBits sizes the tree's pages: 64Ki nodes, 512 KiB. Pages, rather than
// one growing slice, keep a large tree from being copied (and briefly held
// twice) as it grows.
const pageBits = 16

// tree is a MaxMind DB search tree (IPv6, IPv4 in ::/96) built from
// networks inserted in ascending address order.
type tree struct {
	pages    [][]uint32 // node n's records: pages[n>>pageBits][2*(n%page) + bit]
	nodes    uint32
	path     [128]uint32 // path[d] is the node at depth d on the path to the last insert
	pathLen  int         // nodes on that path
	hi, lo   uint64      // address of the last insert
	leaf     bool        // whether the path ends in a record (not only in nodes)
	ipv4Root uint32      // the node at ::/96
}

func (t *tree) init() {
	t.pathLen = 1
	t.newNode() // the root
	// IPv4 lives under ::/96, which exists even with no IPv4 networks, as
	// mmdbwriter makes it: the aliases point at it.
	for d := range 96 {
		n := t.newNode()
		*t.rec(t.path[d], 0) = n
		t.path[d+1] = n
	}
	t.pathLen = 97
	t.ipv4Root = t.path[96]
}

func (t *tree) newNode() uint32 {
	n := t.nodes
	if int(n>>pageBits) == len(t.pages) {
		t.pages = append(t.pages, make([]uint32, 2<<pageBits))
	}
	t.nodes++
	return n
}

func (t *tree) rec(n uint32, bit uint64) *uint32 {
	return &t.pages[n>>pageBits][2*(n&(1<<pageBits-1))+uint32(bit)]
}

// bitAt returns bit d (0 is the most significant) of the address hi:lo.
func bitAt(hi, lo uint64, d int) uint64 {
	if d < 64 {
		return hi >> (63 - d) & 1
	}
	return lo >> (127 - d) & 1
}

var errOrder = errors.New("networks out of order or overlapping")

// insert adds the network hi:lo/prefixLen with record value v. Networks
// must come in ascending order and not overlap, so everything to the right
// of the last insert's path is still empty: the new network branches off
// that path where its address first differs and needs only new nodes
// below.
func (t *tree) insert(hi, lo uint64, prefixLen int, v uint32) error {
	d := 128
	if x := hi ^ t.hi; x != 0 {
		d = bits.LeadingZeros64(x)
	} else if x := lo ^ t.lo; x != 0 {
		d = 64 + bits.LeadingZeros64(x)
	}
	switch {
	case d >= t.pathLen && t.leaf:
		return fmt.Errorf("%w: a network inside the one before", errOrder)
	case d >= t.pathLen:
		d = t.pathLen - 1 // below a bare path: carry on down it
	case bitAt(hi, lo, d) == 0:
		return fmt.Errorf("%w: a network before the one before", errOrder)
	}
	if prefixLen <= d {
		return fmt.Errorf("%w: a network around the one before", errOrder)
	}
	if *t.rec(t.path[d], bitAt(hi, lo, d)) != recEmpty {
		return fmt.Errorf("%w: a filled record", errOrder)
	}
	for ; d < prefixLen-1; d++ {
		n := t.newNode()
		*t.rec(t.path[d], bitAt(hi, lo, d)) = n
		t.path[d+1] = n
	}
	*t.rec(t.path[d], bitAt(hi, lo, d)) = v
	t.pathLen, t.hi, t.lo, t.leaf = prefixLen, hi, lo, true
	return nil
}

// aliasIPv4 points the IPv6 networks MaxMind's writers alias to IPv4 at
// the IPv4 subtree: IPv4-mapped ::ffff:0:0/96, Teredo 2001::/32 and 6to4
// 2002::/16. It goes between the IPv4 and the IPv6 networks.
func (t *tree) aliasIPv4() error {
	for _, a := range [...]struct {
		hi, lo uint64
		bits   int
	}{
		{0, 0xffff << 32, 96},
		{0x2001 << 48, 0, 32},
		{0x2002 << 48, 0, 16},
	} {
		if err := t.insert(a.hi, a.lo, a.bits, t.ipv4Root); err != nil {
			return fmt.Errorf("alias: %w", err)
		}
	}
	return nil
}

// write writes the database: the search tree, the data section (data,
// with location i at recOff[i]) and the metadata.
func (t *tree) write(w io.Writer, data []byte, recOff []uint32, description string) error {
	nodes := uint64(t.nodes)
	recordSize := 28
	if nodes+16+uint64(len(data)) >= 1<<28 {
		recordSize = 32
	}
	if nodes+16+uint64(len(data)) >= 1<<32 {
		return fmt.Errorf("%d nodes and %d bytes of data are too many for a MaxMind database", nodes, len(data))
	}
	value := func(r uint32) uint32 {
		switch {
		case r == recEmpty:
			return uint32(nodes)
		case r&recData != 0:
			return uint32(nodes) + 16 + recOff[r&^recData]
		}
		return r
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var b [8]byte
	for n := range t.nodes {
		l, r := value(*t.rec(n, 0)), value(*t.rec(n, 1))
		if recordSize == 28 {
			b[0], b[1], b[2] = byte(l>>16), byte(l>>8), byte(l)
			b[3] = byte(l>>24)<<4 | byte(r>>24)&0x0f
			b[4], b[5], b[6] = byte(r>>16), byte(r>>8), byte(r)
			bw.Write(b[:7])
		} else {
			binary.BigEndian.PutUint32(b[0:], l)
			binary.BigEndian.PutUint32(b[4:], r)
			bw.Write(b[:8])
		}
	}
	bw.Write(make([]byte, 16)) // the data section separator
	bw.Write(data)
	bw.WriteString("\xab\xcd\xefMaxMind.com")

	var md dataWriter // no pointers: those in metadata count from its start
	md.mapHeader(9)
	md.key("binary_format_major_version")
	md.uint(typeUint16, 2)
	md.key("binary_format_minor_version")
	md.uint(typeUint16, 0)
	md.key("build_epoch")
	md.uint(typeUint64, BuildEpoch)
	md.key("database_type")
	md.key(City)
	md.key("description")
	md.mapHeader(1)
	md.key("en")
	md.key(description)
	md.key("ip_version")
	md.uint(typeUint16, 6)
	md.key("languages")
	md.ctrl(typeArray, 1)
	md.key("en")
	md.key("node_count")
	md.uint(typeUint32, nodes)
	md.key("record_size")
	md.uint(typeUint16, uint64(recordSize))
	bw.Write(md.b)
	// bufio.Writer keeps the first error; Flush reports it.
	return bw.Flush()
}

// encodeSynthData encodes every location of p as a GeoIP2 City record,
// the fields and shape record() gives mmdbwriter, and returns the data
// section and each location's offset in it. Keys, repeated values and
// repeated parts (continent, country, subdivision) are written once and
// pointed at, as mmdbwriter does.
func encodeSynthData(p *synthPlan) ([]byte, []uint32) {
	d := dataWriter{strs: make(map[string]uint32), doubles: make(map[float64]uint32), parts: make(map[string]uint32)}
	off := make([]uint32, len(p.locs))
	for i := range p.locs {
		l := &p.locs[i]
		c := &synthCountries[l.country]
		off[i] = uint32(len(d.b))
		n := 3 // continent, country, location
		if l.city != "" {
			n++
		}
		if l.subCode != "" {
			n++
		}
		d.mapHeader(n) // keys in mmdbwriter's (sorted) order
		if l.city != "" {
			d.str("city")
			d.mapHeader(1)
			d.str("names")
			d.mapHeader(1)
			d.str("en")
			d.str(l.city)
		}
		d.str("continent")
		if !d.part("continent " + c.continent) {
			d.mapHeader(1)
			d.str("code")
			d.str(c.continent)
		}
		d.str("country")
		if !d.part("country " + c.code) {
			d.mapHeader(1)
			d.str("iso_code")
			d.str(c.code)
		}
		d.str("location")
		d.mapHeader(2)
		d.str("latitude")
		d.double(l.lat)
		d.str("longitude")
		d.double(l.lon)
		if l.subCode != "" {
			d.str("subdivisions")
			if !d.part("subdivisions " + c.code + "-" + l.subCode) {
				d.ctrl(typeArray, 1)
				d.mapHeader(1)
				d.str("iso_code")
				d.str(l.subCode)
			}
		}
	}
	return d.b, off
}

// MaxMind DB data types.
const (
	typePointer = 1
	typeString  = 2
	typeDouble  = 3
	typeUint16  = 5
	typeUint32  = 6
	typeMap     = 7
	typeUint64  = 9
	typeArray   = 11
)

// dataWriter encodes values of the MaxMind DB data section.
type dataWriter struct {
	b       []byte
	strs    map[string]uint32  // strings written so far, by offset; nil: no pointers
	doubles map[float64]uint32 // the same for doubles
	parts   map[string]uint32  // shared values written so far, by name
}

// ctrl appends a control byte (and the extended type and size bytes it
// needs) for a value of type typ and size n.
func (d *dataWriter) ctrl(typ, n int) {
	var c byte
	if typ <= 7 {
		c = byte(typ) << 5
	}
	var extra []byte
	switch {
	case n < 29:
		c |= byte(n)
	case n < 29+256:
		c |= 29
		extra = []byte{byte(n - 29)}
	case n < 285+65536:
		c |= 30
		extra = []byte{byte((n - 285) >> 8), byte(n - 285)}
	default:
		c |= 31
		m := n - 65821
		extra = []byte{byte(m >> 16), byte(m >> 8), byte(m)}
	}
	d.b = append(d.b, c)
	if typ > 7 {
		d.b = append(d.b, byte(typ-7))
	}
	d.b = append(d.b, extra...)
}

func (d *dataWriter) mapHeader(n int) { d.ctrl(typeMap, n) }

// key appends s as a string, never as a pointer.
func (d *dataWriter) key(s string) {
	d.ctrl(typeString, len(s))
	d.b = append(d.b, s...)
}

// str appends s, or a pointer to where it was written before if that is
// shorter.
func (d *dataWriter) str(s string) {
	if off, ok := d.strs[s]; ok && pointerLen(off) < len(s)+1 {
		d.pointer(off)
		return
	}
	if _, ok := d.strs[s]; !ok && d.strs != nil {
		d.strs[s] = uint32(len(d.b))
	}
	d.key(s)
}

// part appends a pointer to the shared value called name and returns
// true, or, the first time, notes that the caller writes it here and
// returns false.
func (d *dataWriter) part(name string) bool {
	if off, ok := d.parts[name]; ok {
		d.pointer(off)
		return true
	}
	d.parts[name] = uint32(len(d.b))
	return false
}

func pointerLen(off uint32) int {
	switch {
	case off < 2048:
		return 2
	case off < 526336:
		return 3
	case off < 134744064:
		return 4
	}
	return 5
}

func (d *dataWriter) pointer(off uint32) {
	const p = typePointer << 5
	switch {
	case off < 2048:
		d.b = append(d.b, p|byte(off>>8), byte(off))
	case off < 526336:
		v := off - 2048
		d.b = append(d.b, p|1<<3|byte(v>>16), byte(v>>8), byte(v))
	case off < 134744064:
		v := off - 526336
		d.b = append(d.b, p|2<<3|byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	default:
		d.b = append(d.b, p|3<<3, byte(off>>24), byte(off>>16), byte(off>>8), byte(off))
	}
}

// double appends f, or a pointer to where it was written before if that
// is shorter: rounded coordinates repeat.
func (d *dataWriter) double(f float64) {
	if off, ok := d.doubles[f]; ok && pointerLen(off) < 9 {
		d.pointer(off)
		return
	}
	if _, ok := d.doubles[f]; !ok && d.doubles != nil {
		d.doubles[f] = uint32(len(d.b))
	}
	d.ctrl(typeDouble, 8)
	d.b = binary.BigEndian.AppendUint64(d.b, math.Float64bits(f))
}

// uint appends v as an unsigned integer of type typ, in as few bytes as
// it needs.
func (d *dataWriter) uint(typ int, v uint64) {
	n := (bits.Len64(v) + 7) / 8
	d.ctrl(typ, n)
	for i := n - 1; i >= 0; i-- {
		d.b = append(d.b, byte(v>>(8*i)))
	}
}
