package access

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"regexp"

	"switchyard/delivery"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

func validateName(name string) error {
	if !nameRE.MatchString(name) {
		return delivery.Errorf(delivery.EINVALID, "user name must be 1-64 characters of letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
	}
	return nil
}

func validatePassword(pw string) error {
	if len(pw) < MinPasswordLen || len(pw) > MaxPasswordLen {
		return delivery.Errorf(delivery.EINVALID, "password must be %d to %d bytes long", MinPasswordLen, MaxPasswordLen)
	}
	return nil
}

// validateUser checks a new account's name, then its password.
func validateUser(name, password string) error {
	if err := validateName(name); err != nil {
		return err
	}
	return validatePassword(password)
}

func hashToken(plaintext string) string {
	sum := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(sum[:])
}

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", internal("generate random token", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// randomPassword returns n characters from an alphabet without look-alikes
// (no 0/O, 1/l/I), drawn without modulo bias.
func randomPassword(n int) (string, error) {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	out := make([]byte, 0, n)
	buf := make([]byte, 1)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", internal("generate password", err)
		}
		// 256 - 256%57 = 228: reject the tail that would bias the first letters.
		if int(buf[0]) >= 256-256%len(alphabet) {
			continue
		}
		out = append(out, alphabet[int(buf[0])%len(alphabet)])
	}
	return string(out), nil
}

// GeneratePassword returns a random 20-character password for a new user.
func GeneratePassword() (string, error) { return randomPassword(20) }
