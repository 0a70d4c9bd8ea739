#!/usr/bin/env python3
"""Builds do-nothing stand-ins for the CUDA libraries that PyPI's torch wheel links against, so
that torch (and bitsandbytes' CPU backend) import on a machine without CUDA.

Why: PyPI's Linux torch wheel (2.15.0 here) lists libcudart.so.13, libcublas.so.13, libcudnn.so.9,
… as DT_NEEDED; the dynamic loader refuses to load torch without files of those names, and the
real ones come only as ~3 GB of nvidia-* wheels. Nothing on the CPU path calls them: every stub
function returns cudaErrorNoDevice (100) and `cudaGetDeviceCount` reports 0 devices, so
`torch.cuda.is_available()` is False and bitsandbytes picks its CPU backend. The goldens are
computed by torch's and bitsandbytes' CPU code only.

Usage: python3 Tests/Generators/bnb_cuda_stubs.py OUTDIR
       LD_LIBRARY_PATH=OUTDIR python3 Tests/Generators/bnb_goldens.py
"""
import os
import re
import subprocess
import sys
import sysconfig

CUDA_SONAME = re.compile(r"^lib(cu|nv|nccl)[A-Za-z_]*\.so(\.\d+)?$")


def torch_libraries():
    site = sysconfig.get_paths()["purelib"]
    folder = os.path.join(site, "torch", "lib")
    paths = [os.path.join(folder, name) for name in sorted(os.listdir(folder)) if name.endswith(".so")]
    paths += [os.path.join(site, "torch", name) for name in os.listdir(os.path.join(site, "torch"))
              if name.startswith("_C") and name.endswith(".so")]
    return paths


def needed(path):
    output = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
    return re.findall(r"NEEDED.*\[(.+)\]", output)


# Unversioned imports are assigned to a stub library by their name prefix.
UNVERSIONED_PREFIX = {"libcuda.so.1": r"^cu(?!File|sparse|blas|fft|solver|dnn|pti|rand)[A-Z]",
                      "libcusparseLt.so.0": r"^cusparseLt", "libnccl.so.2": r"^nccl", "libcufile.so.0": r"^cuFile"}


def undefined_imports(path):
    """(symbol, version) pairs the library imports; version "" when untagged."""
    output = subprocess.run(["readelf", "--dyn-syms", "-W", path], capture_output=True, text=True).stdout
    pairs = set()
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[6] == "UND" and fields[7] != "":
            symbol, _, version = fields[7].partition("@")
            pairs.add((symbol, version.split(" ")[0]))
    return pairs


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "cuda-stubs")
    os.makedirs(out, exist_ok=True)
    libraries = torch_libraries()
    present = {os.path.basename(p) for p in libraries}
    sonames = sorted({n for p in libraries for n in needed(p) if CUDA_SONAME.match(n) and n not in present})
    imports = set().union(*(undefined_imports(p) for p in libraries))
    for soname in sonames:
        # The version tag a library exports is its soname, except nvshmem's "NVSHMEM".
        versions = {v for (_, v) in imports if v == soname or (soname.startswith("libnvshmem") and v == "NVSHMEM")}
        symbols = {s for (s, v) in imports if v in versions}
        if soname in UNVERSIONED_PREFIX:
            symbols |= {s for (s, v) in imports if v == "" and re.match(UNVERSIONED_PREFIX[soname], s)}
        symbols = sorted(symbols)
        source = ["typedef int stub_status;"]
        for symbol in symbols:
            if symbol == "cudaGetDeviceCount":
                source.append("stub_status cudaGetDeviceCount(int *count) { if (count) *count = 0; return 100; }")
            elif symbol in ("cudaGetErrorString", "cudaGetErrorName"):
                source.append(f'const char *{symbol}(int e) {{ (void)e; return "no CUDA device (stub)"; }}')
            else:
                source.append(f"stub_status {symbol}(void) {{ return 100; }}")
        stem = os.path.join(out, soname)
        with open(stem + ".c", "w") as handle:
            handle.write("\n".join(source) + "\n")
        script = stem + ".map"
        with open(script, "w") as handle:
            if versions:
                for version in sorted(versions):
                    handle.write(f"{version} {{ global: *; }};\n")
            else:
                handle.write("{ global: *; };\n")
        subprocess.run(["cc", "-shared", "-fPIC", "-o", stem, stem + ".c", f"-Wl,-soname,{soname}",
                        f"-Wl,--version-script,{script}"], check=True)
        print(f"{soname}: {len(symbols)} stub functions")


if __name__ == "__main__":
    main()
