// lib/apns's CourierClient reads and writes a CourierStream; in the browser that is lib/net's TLS over a WebSocket
// tunnel. The watcher runs in Node, next to the network, so its stream is a node:tls socket: this adapter gives it
// the ByteStream shape (whole writes in order, reads of the next chunk, one `closed` settlement) with flow control
// both ways: write() waits for 'drain', and the socket stops being read while too much sits unread.
import type { TLSSocket } from 'node:tls';
import type { CourierStream } from '../../lib/apns/courier-client';
import { ChunkQueue } from '../../lib/net/chunk-queue';
import { NetError } from '../../lib/net/errors';
import type { CloseInfo } from '../../lib/net/byte-stream';

/** Unread bytes beyond this pause the socket (a courier frame is at most 64 KiB). */
const READ_HIGH_WATER = 128 * 1024;

export function tlsCourierStream(socket: TLSSocket): CourierStream {
  const queue = new ChunkQueue();
  let failure: NetError | undefined;
  let settle!: (info: CloseInfo) => void;
  const closed = new Promise<CloseInfo>((resolve) => (settle = resolve));

  socket.on('data', (chunk: Buffer) => {
    queue.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if (queue.size > READ_HIGH_WATER) socket.pause();
  });
  socket.on('end', () => queue.end());
  socket.on('error', (e: Error) => {
    failure ??= new NetError('connection-lost', `the courier connection failed: ${e.message}`, { cause: e });
  });
  socket.on('close', () => {
    queue.end(failure);
    settle(failure ? { error: failure } : {});
  });

  return {
    alpnProtocol: typeof socket.alpnProtocol === 'string' ? socket.alpnProtocol : null,
    write(bytes) {
      if (socket.destroyed || !socket.writable) {
        return Promise.reject(new NetError('connection-closed', 'the courier connection is closed'));
      }
      return new Promise((resolve, reject) => {
        const flushed = socket.write(bytes, (e) => {
          if (e) reject(new NetError('connection-lost', 'writing to the courier failed', { cause: e }));
          else if (flushed) resolve();
        });
        if (!flushed) {
          const onDrain = () => {
            socket.off('close', onClose);
            resolve();
          };
          const onClose = () => {
            socket.off('drain', onDrain);
            reject(new NetError('connection-closed', 'the courier connection closed while writing'));
          };
          socket.once('drain', onDrain);
          socket.once('close', onClose);
        }
      });
    },
    async read() {
      const chunk = await queue.read();
      if (socket.isPaused() && queue.size <= READ_HIGH_WATER / 2) socket.resume();
      return chunk;
    },
    close() {
      queue.discard();
      socket.destroy();
    },
    closed,
  };
}
