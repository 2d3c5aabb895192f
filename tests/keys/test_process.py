"""keys.process.pid(): the process id without a system call, right in a forked child too."""

import os

from keys import process


def test_pid_is_this_process_id():
    assert process.pid() == os.getpid()


def test_a_forked_child_sees_its_own_id():
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report and leave without running pytest's teardown
        os.write(write_end, f"{process.pid()} {os.getpid()}".encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    reported = os.read(read_end, 100).decode().split()
    os.close(read_end)
    assert reported == [str(child), str(child)]
    assert process.pid() == os.getpid() != child
