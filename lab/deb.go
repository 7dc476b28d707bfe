package lab

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// debEpoch is the modification time of every member and file of the lab's
// packages: equal inputs make equal .deb files.
var debEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// debPackage is a binary Debian package the lab mirror builds.
type debPackage struct {
	Name, Version, Section, Priority, Homepage string
	Depends, Recommends, Conflicts, Replaces   string
	Provides                                   string
	// Summary is the first line of the description.
	Summary string
	Files   []debFile
	// Postinst is the postinst maintainer script (empty: none).
	Postinst string
}

// debFile is one file of a package: Path absolute in the installed system,
// the content from the file Src or, when Src is empty, Data.
type debFile struct {
	Path     string
	Mode     int64
	Src      string
	Data     []byte
	Conffile bool
}

// debArch is the architecture of every package the lab builds (the bundle's).
const debArch = "amd64"

// fileName is the package's file name as Debian's tools name it.
func (p debPackage) fileName() string {
	v := p.Version
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	return p.Name + "_" + v + "_" + debArch + ".deb"
}

// writeDeb writes p as a .deb at dst (ar archive: debian-binary,
// control.tar.gz, data.tar.gz) and returns the control file's fields, in
// the order dpkg writes them.
func writeDeb(dst string, p debPackage) (string, error) {
	data, err := os.CreateTemp(path.Dir(dst), ".data-*.tar.gz")
	if err != nil {
		return "", err
	}
	defer os.Remove(data.Name())
	defer data.Close()
	sums, size, err := writeDataTar(data, p.Files)
	if err != nil {
		return "", fmt.Errorf("package %s: %w", p.Name, err)
	}
	control := p.control((size + 1023) / 1024)
	ctl, err := controlTar(control, sums, p)
	if err != nil {
		return "", fmt.Errorf("package %s: %w", p.Name, err)
	}
	dataSize, err := data.Seek(0, io.SeekEnd)
	if err != nil {
		return "", err
	}
	if _, err := data.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	tmp := dst + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp)
	err = writeAr(out, []arMember{
		{"debian-binary", int64(len("2.0\n")), strings.NewReader("2.0\n")},
		{"control.tar.gz", int64(len(ctl)), bytes.NewReader(ctl)},
		{"data.tar.gz", dataSize, data},
	})
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", dst, err)
	}
	return control, os.Rename(tmp, dst)
}

// control is the package's control file for an installed size of kib KiB.
func (p debPackage) control(kib int64) string {
	var b strings.Builder
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(&b, "%s: %s\n", name, value)
		}
	}
	field("Package", p.Name)
	field("Version", p.Version)
	field("Architecture", debArch)
	field("Maintainer", "boot lab <root@localhost>")
	field("Installed-Size", fmt.Sprint(kib))
	field("Depends", p.Depends)
	field("Recommends", p.Recommends)
	field("Conflicts", p.Conflicts)
	field("Replaces", p.Replaces)
	field("Provides", p.Provides)
	field("Section", p.Section)
	field("Priority", p.Priority)
	field("Homepage", p.Homepage)
	field("Description", p.Summary+"\n Built by boot's lab from the files of its offline bundle.")
	return b.String()
}

// writeDataTar writes the gzip-compressed data.tar of files to w, with
// every parent folder, and returns the md5sums file and the files' total size.
func writeDataTar(w io.Writer, files []debFile) (string, int64, error) {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return "", 0, err
	}
	tw := tar.NewWriter(zw)
	header := func(name string, typ byte, mode, size int64) *tar.Header {
		return &tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: size, ModTime: debEpoch,
			Uname: "root", Gname: "root", Format: tar.FormatGNU}
	}
	sorted := append([]debFile(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	dirs := map[string]bool{}
	var sums strings.Builder
	var total int64
	if err := tw.WriteHeader(header("./", tar.TypeDir, 0o755, 0)); err != nil {
		return "", 0, err
	}
	for _, f := range sorted {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
			return "", 0, fmt.Errorf("file %q: not a clean absolute path", f.Path)
		}
		rel := f.Path[1:]
		var parents []string
		for d := path.Dir(rel); d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append(parents, d)
			dirs[d] = true
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if err := tw.WriteHeader(header("./"+parents[i]+"/", tar.TypeDir, 0o755, 0)); err != nil {
				return "", 0, err
			}
		}
		sum, size, err := addDataFile(tw, header, "./"+rel, f)
		if err != nil {
			return "", 0, fmt.Errorf("%s: %w", f.Path, err)
		}
		fmt.Fprintf(&sums, "%s  %s\n", sum, rel)
		total += size
	}
	if err := tw.Close(); err != nil {
		return "", 0, err
	}
	return sums.String(), total, zw.Close()
}

// addDataFile writes f into tw as name and returns its md5 and size.
func addDataFile(tw *tar.Writer, header func(string, byte, int64, int64) *tar.Header, name string, f debFile) (string, int64, error) {
	var r io.Reader = bytes.NewReader(f.Data)
	size := int64(len(f.Data))
	if f.Src != "" {
		in, err := os.Open(f.Src)
		if err != nil {
			return "", 0, err
		}
		defer in.Close()
		st, err := in.Stat()
		if err != nil {
			return "", 0, err
		}
		r, size = in, st.Size()
	}
	if err := tw.WriteHeader(header(name, tar.TypeReg, f.Mode, size)); err != nil {
		return "", 0, err
	}
	h := md5.New()
	if n, err := io.Copy(tw, io.TeeReader(r, h)); err != nil {
		return "", 0, err
	} else if n != size {
		return "", 0, fmt.Errorf("%s changed while it was packed", f.Src)
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

// controlTar is the gzip-compressed control.tar: control, md5sums, and
// conffiles and postinst when the package has them.
func controlTar(control, md5sums string, p debPackage) ([]byte, error) {
	type member struct {
		name string
		mode int64
		data string
	}
	members := []member{{"control", 0o644, control}, {"md5sums", 0o644, md5sums}}
	var conffiles []string
	for _, f := range p.Files {
		if f.Conffile {
			conffiles = append(conffiles, f.Path)
		}
	}
	sort.Strings(conffiles)
	if len(conffiles) > 0 {
		members = append(members, member{"conffiles", 0o644, strings.Join(conffiles, "\n") + "\n"})
	}
	if p.Postinst != "" {
		members = append(members, member{"postinst", 0o755, p.Postinst})
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: debEpoch,
		Uname: "root", Gname: "root", Format: tar.FormatGNU}); err != nil {
		return nil, err
	}
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: "./" + m.name, Typeflag: tar.TypeReg, Mode: m.mode, Size: int64(len(m.data)),
			ModTime: debEpoch, Uname: "root", Gname: "root", Format: tar.FormatGNU}); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, m.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type arMember struct {
	name string
	size int64
	r    io.Reader
}

// writeAr writes a common ar archive (the .deb container) of members.
func writeAr(w io.Writer, members []arMember) error {
	if _, err := io.WriteString(w, "!<arch>\n"); err != nil {
		return err
	}
	for _, m := range members {
		if _, err := fmt.Fprintf(w, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, debEpoch.Unix(), 0, 0, "100644", m.size); err != nil {
			return err
		}
		if n, err := io.Copy(w, m.r); err != nil {
			return err
		} else if n != m.size {
			return fmt.Errorf("ar member %s: %d bytes, want %d", m.name, n, m.size)
		}
		if m.size%2 == 1 {
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
	}
	return nil
}
