"""Builds anamo._anamo, the CPython binding of include/anamo.h.

The build step runs CMake on the checkout (the directory above this one) and builds only the
static library target `anamo`, position-independent, then links the extension against that
libanamo.a and the libraries it needs: the extension runs the very code the `anamo` command
runs, so that both give the same results bit for bit. Nothing is downloaded: CMake, a C
compiler, NumPy's headers (python3-numpy) and the libraries of scripts/install-deps.sh must be
there.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# the libraries libanamo.a calls into, as the root CMakeLists.txt finds them
PKG_CONFIG_MODULES = ["openblas", "libcjson", "zlib", "inih", "stb"]
# OpenBLAS's archive holds its LAPACK, compiled Fortran: it calls the gfortran runtime, by its
# soname (libopenblas0 installs libgfortran5; the unversioned libgfortran.so is a compiler's)
EXTRA_LIBS = ["-ldnnl", "-lgomp", "-l:libgfortran.so.5", "-lm"]


def version():
    with open(os.path.join(ROOT, "include", "anamo.h"), encoding="utf-8") as f:
        m = re.search(r'#define ANAMO_VERSION_STRING "([^"]+)"', f.read())
    if not m:
        sys.exit("setup.py: no ANAMO_VERSION_STRING in ../include/anamo.h")
    return m.group(1)


def pkg_config(*args):
    try:
        out = subprocess.run(["pkg-config", *args, *PKG_CONFIG_MODULES], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        sys.exit(f"setup.py: pkg-config {' '.join(args)} {' '.join(PKG_CONFIG_MODULES)} "
                 f"failed (run scripts/install-deps.sh): {detail.strip()}")
    return shlex.split(out)


class BuildWithLibanamo(build_ext):
    """build_ext that first builds libanamo.a from the checkout with CMake."""

    @staticmethod
    def _forget_other_checkout(libdir):
        """A build folder CMake configured for another source folder (a moved checkout) is
        started afresh: CMake refuses to reuse it."""
        cache = os.path.join(libdir, "CMakeCache.txt")
        if not os.path.isfile(cache):
            return
        with open(cache, encoding="utf-8", errors="replace") as f:
            m = re.search(r"^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$", f.read(), re.M)
        if m and os.path.realpath(m.group(1)) != os.path.realpath(ROOT):
            shutil.rmtree(libdir)

    @staticmethod
    def _link_args():
        """pkg-config's link flags, with OpenBLAS's archive in place of -lopenblas.

        The anamo command runs on the OpenMP build of OpenBLAS (Debian's openblas-openmp, the
        folder pkg-config names). A Python process usually holds another one before anamo
        loads: NumPy's libblas.so.3 pulls in libopenblas.so.0, which Debian's alternatives
        point at the pthread build, and the loader would give anamo that library too (same
        soname). So the extension links the OpenMP build's static archive (the same compiled
        kernels as its shared library) with its symbols kept private (--exclude-libs): anamo
        runs on the command's OpenBLAS whatever was imported first.
        """
        link = pkg_config("--libs")
        libdir = subprocess.run(["pkg-config", "--variable=libdir", "openblas"], check=True,
                                capture_output=True, text=True).stdout.strip()
        archive = os.path.join(libdir, "libopenblas.a")
        if not os.path.isfile(archive):
            sys.exit(f"setup.py: no {archive} (libopenblas-openmp-dev ships it)")
        link = [a for a in link if a != "-lopenblas" and a != f"-L{libdir}" and
                a.rstrip("/") != f"-L{libdir.rstrip('/')}"]
        return link, [archive]

    def run(self):
        if not os.path.isfile(os.path.join(ROOT, "CMakeLists.txt")):
            sys.exit(f"setup.py: {ROOT} holds no CMakeLists.txt: build from the checkout "
                     "(pip install ./python at its root), not from a copy of python/ alone")
        libdir = os.path.join(os.path.abspath(self.build_temp), "libanamo")
        self._forget_other_checkout(libdir)
        cmake = os.environ.get("CMAKE", "cmake")
        jobs = str(os.cpu_count() or 1)
        # one process: data-parallel training is the anamo command's, under mpirun
        self.spawn([cmake, "-S", ROOT, "-B", libdir, "-DCMAKE_BUILD_TYPE=Release",
                    "-DANAMO_TESTS=OFF", "-DCMAKE_POSITION_INDEPENDENT_CODE=ON",
                    "-DANAMO_MPI=OFF"])
        self.spawn([cmake, "--build", libdir, "--target", "anamo", "-j", jobs])
        archive = os.path.join(libdir, "libanamo.a")
        if not os.path.isfile(archive):
            sys.exit(f"setup.py: CMake built no {archive}")
        link, archives = self._link_args()
        for ext in self.extensions:
            ext.extra_objects = [archive] + archives
            # anamo asks OpenBLAS for its configuration through weak references
            # (src/core/cpu.c), which alone would not pull them out of the archive
            pull = [f"-Wl,--undefined={s}" for s in ("openblas_get_config",
                                                     "openblas_get_corename")]
            ext.extra_link_args = pull + link + EXTRA_LIBS + ["-Wl,--exclude-libs,ALL"]
            ext.include_dirs += [os.path.join(ROOT, "include"), numpy.get_include()]
            ext.depends = [archive]
        # always compile and link the four small files: a changed link line or library is not
        # a changed source, and setuptools would keep the old extension
        self.force = True
        super().run()


SOURCES = ["module.c", "arrays.c", "model.c", "run.c"]

setup(
    name="anamo",
    version=version(),
    description="Autoencoders trained by Nested Alternating Minimization: Python binding of "
                "the anamo C library",
    license="MIT",
    packages=["anamo"],
    python_requires=">=3.10",
    install_requires=["numpy"],
    ext_modules=[Extension(
        "anamo._anamo",
        sources=[os.path.join("src", s) for s in SOURCES],
        depends=[os.path.join("src", "pyanamo.h"), os.path.join(ROOT, "include", "anamo.h")],
        extra_compile_args=["-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                            "-Wno-missing-field-initializers"],
    )],
    cmdclass={"build_ext": BuildWithLibanamo},
    zip_safe=False,
)
