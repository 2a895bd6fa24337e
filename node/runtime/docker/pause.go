package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"

	"github.com/docker/docker/api/types/image"
)

// PauseImage is the sandbox image the agent makes itself.
const PauseImage = "orch/pause:1"

// pauseCode is the program each pause container runs: it blocks in the
// kernel forever and does nothing else. Signals end it (the agent kills
// sandboxes with SIGKILL). Machine code per architecture:
//
//	amd64: mov eax, 34 (pause); syscall; jmp back
//	arm64: x0..x3 = 0; x8 = 73 (ppoll); svc 0; b back
//	       ppoll(NULL, 0, NULL, NULL) waits for a signal that never comes.
var pauseCode = map[string]struct {
	machine uint16
	code    []byte
}{
	"amd64": {machine: 62, code: []byte{0xb8, 0x22, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7}},
	"arm64": {machine: 183, code: le32(0xd2800000, 0xd2800001, 0xd2800002, 0xd2800003, 0xd2800928, 0xd4000001, 0x17fffffa)},
}

func le32(words ...uint32) []byte {
	b := make([]byte, 0, 4*len(words))
	for _, w := range words {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	return b
}

// pauseBinary returns a minimal static ELF executable for arch: an ELF
// header, one loadable segment, and the code. It is under 200 bytes, so
// the sandbox image needs no registry and no toolchain on the node.
func pauseBinary(arch string) ([]byte, error) {
	pc, ok := pauseCode[arch]
	if !ok {
		return nil, fmt.Errorf("docker: no pause program for architecture %s", arch)
	}
	const base, ehSize, phSize = 0x400000, 64, 56
	entry := uint64(base + ehSize + phSize)
	size := uint64(ehSize + phSize + len(pc.code))
	var b bytes.Buffer
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}) // 64-bit, little-endian, SysV
	le := binary.LittleEndian
	w := func(v any) { _ = binary.Write(&b, le, v) } // writes to a bytes.Buffer cannot fail
	w(uint16(2))                                     // e_type: executable
	w(pc.machine)                                    // e_machine
	w(uint32(1))                                     // e_version
	w(entry)                                         // e_entry
	w(uint64(ehSize))                                // e_phoff
	w(uint64(0))                                     // e_shoff
	w(uint32(0))                                     // e_flags
	w(uint16(ehSize))                                // e_ehsize
	w(uint16(phSize))                                // e_phentsize
	w(uint16(1))                                     // e_phnum
	w(uint16(0))                                     // e_shentsize
	w(uint16(0))                                     // e_shnum
	w(uint16(0))                                     // e_shstrndx
	w(uint32(1))                                     // p_type: PT_LOAD
	w(uint32(5))                                     // p_flags: read, execute
	w(uint64(0))                                     // p_offset
	w(uint64(base))                                  // p_vaddr
	w(uint64(base))                                  // p_paddr
	w(size)                                          // p_filesz
	w(size)                                          // p_memsz
	w(uint64(0x1000))                                // p_align
	b.Write(pc.code)
	return b.Bytes(), nil
}

// pauseImageTar is a one-file root filesystem holding /pause.
func pauseImageTar(arch string) ([]byte, error) {
	bin, err := pauseBinary(arch)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "pause", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ensurePauseImage imports the pause image unless it is present.
func (d *Docker) ensurePauseImage(ctx context.Context) error {
	if _, err := d.cli.ImageInspect(ctx, PauseImage); err == nil {
		return nil
	}
	tarball, err := pauseImageTar(runtime.GOARCH)
	if err != nil {
		return err
	}
	rc, err := d.cli.ImageImport(ctx, image.ImportSource{Source: bytes.NewReader(tarball), SourceName: "-"}, PauseImage,
		image.ImportOptions{Changes: []string{`ENTRYPOINT ["/pause"]`}})
	if err != nil {
		return fmt.Errorf("docker: import the pause image: %w", err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("docker: import the pause image: %w", err)
	}
	return nil
}
