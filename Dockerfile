FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production KEYGATE_DATA_DIR=/var/lib/keygate
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
# The code stays root-owned (read-only to the server); only the data directory is the server's.
COPY . .
RUN mkdir -p /var/lib/keygate && chown node:node /var/lib/keygate
USER node
EXPOSE 8080 8081 8082
# Whichever listeners this process runs, one of them answers /healthz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s CMD ["node", "-e", "const e=process.env;Promise.any([e.KEYGATE_OUTBOUND_PORT||8080,e.KEYGATE_ADMIN_PORT||8081,e.KEYGATE_INBOUND_PORT||8082,e.KEYGATE_STATUS_PORT].filter(Boolean).map(p=>fetch('http://127.0.0.1:'+p+'/healthz').then(r=>{if(!r.ok)throw r.status}))).then(()=>process.exit(0),()=>process.exit(1))"]
ENTRYPOINT ["node", "--no-node-snapshot", "--disable-warning=ExperimentalWarning", "src/cli/main.ts"]
CMD ["serve"]
