FROM node:24-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY . .
ENTRYPOINT ["node", "--no-node-snapshot", "--disable-warning=ExperimentalWarning", "src/cli/main.ts"]
CMD ["serve"]
