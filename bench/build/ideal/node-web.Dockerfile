FROM 127.0.0.1:5000/bench/node:18-slim-bookworm-npm10
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build
EXPOSE 8080
CMD ["node", "dist/index.js"]
