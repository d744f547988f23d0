// The destination server for `bench/bridge.ts`, run as its own process so its sockets and CPU are not the
// benchmark's. One port; the first byte a connection sends picks what it does:
//   'E'            echo everything that follows;
//   'S' + u64 n    read n bytes, then answer one byte (upload throughput);
//   'R' + u64 n    send n bytes (download throughput).
// A connection that sends nothing is simply held open (idle tunnels). Prints {"port": n} once listening.
import net from 'node:net';

const CHUNK = Buffer.alloc(256 * 1024, 0x5a);

async function sendBytes(socket: net.Socket, n: number): Promise<void> {
  let left = n;
  while (left > 0 && !socket.destroyed) {
    const piece = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
    left -= piece.length;
    if (!socket.write(piece)) await new Promise((resolve) => socket.once('drain', resolve));
  }
}

function serve(socket: net.Socket): void {
  socket.setNoDelay(true);
  socket.on('error', () => {});
  let header = Buffer.alloc(0);
  const onHeader = (data: Buffer) => {
    header = Buffer.concat([header, data]);
    const mode = String.fromCharCode(header[0] ?? 0);
    if (mode === 'E') {
      socket.off('data', onHeader);
      if (header.length > 1) socket.write(header.subarray(1));
      socket.pipe(socket);
      return;
    }
    if (header.length < 9) return;
    socket.off('data', onHeader);
    const n = Number(header.readBigUInt64BE(1));
    if (mode === 'S') {
      let got = header.length - 9;
      const done = () => socket.write(Buffer.from([1]));
      if (got >= n) done();
      else
        socket.on('data', (d: Buffer) => {
          got += d.length;
          if (got >= n && got - d.length < n) done();
        });
    } else if (mode === 'R') {
      void sendBytes(socket, n);
    } else {
      socket.destroy();
    }
  };
  socket.on('data', onHeader);
}

const server = net.createServer(serve);
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: (server.address() as net.AddressInfo).port }));
});
process.on('SIGTERM', () => process.exit(0));
